"""Where receipts leave Visage: the subject's "my data" page (one per grant, only their own), the partner API (read
scope, only the caller's subjects), and the public JWKS that verifies both."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from consent import receipts
from consent.models import Grant, Subject
from consent.services import consent_give_on_page, subject_access_token_rotate
from tests.conftest import api_client
from tests.factories import make_api_key, make_grant, make_notice, make_subject

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

PURPOSES = ("face_analysis", "personalization")


@pytest.fixture
def given(org_a) -> tuple[Subject, str]:
    notice = make_notice(org_a, purposes=PURPOSES)
    return consent_give_on_page(
        organization=org_a, notice=notice, purposes=PURPOSES, offered_purposes=PURPOSES, context_ref="campaign:x"
    )


def _receipt_url(token: str, grant_id: int) -> str:
    return reverse("consent:my-data-receipt", kwargs={"token": token, "grant_id": grant_id})


def _jwks(organization) -> dict:
    response = Client().get(reverse("consent:receipt-keys", kwargs={"org_slug": organization.slug}))
    assert response.status_code == 200
    return response.json()


# --- "my data" -----------------------------------------------------------------------------------------------------


def test_my_data_links_a_receipt_for_each_grant(given) -> None:
    subject, token = given
    html = Client().get(f"/consent/my-data/{token}/?lang=en").content.decode()
    links = re.findall(r'href="([^"]+/receipts/(\d+)/)"', html)
    assert {int(grant_id) for _, grant_id in links} == set(subject.grants.values_list("pk", flat=True))
    assert html.count("Download receipt") == len(PURPOSES)
    german = Client().get(f"/consent/my-data/{token}/?lang=de").content.decode()
    assert german.count("Einwilligungsbeleg herunterladen") == len(PURPOSES)


def test_the_subject_downloads_a_signed_receipt_of_their_grant(given, org_a) -> None:
    subject, token = given
    grant = subject.grants.get(purpose="personalization")
    response = Client().get(_receipt_url(token, grant.pk), HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jose"
    assert response["Content-Disposition"] == f'attachment; filename="consent-receipt-{grant.pk}.jws"'
    assert response["Cache-Control"] == "no-store, private" and response["X-Robots-Tag"] == "noindex, nofollow"
    claims = receipts.receipt_verify(response.content, keys=_jwks(org_a))
    assert claims["piiPrincipalId"] == str(subject.public_id)
    assert claims["purposeKey"] == "personalization" and claims["grantState"] == "active"
    assert claims["collectionMethod"].startswith("Web consent page")
    assert claims["policyUrl"] == f"http://localhost/consent/o/{org_a.slug}/notices/{grant.notice_hash}/"


def test_another_subjects_grant_is_not_found_on_my_data(given, org_a, org_b) -> None:
    _, token = given
    neighbour = make_grant(make_subject(org_a), make_notice(org_a, purposes=("face_verification",)))
    foreign = make_grant(make_subject(org_b), make_notice(org_b))
    for grant_id in (neighbour.pk, foreign.pk, 999_999_999, 2**70):
        response = Client().get(_receipt_url(token, grant_id))
        assert response.status_code == 404, grant_id
        assert response["Cache-Control"] == "no-store, private"
        assert b"eyJ" not in response.content


def test_a_dead_link_gets_the_dead_link_page_not_a_receipt(given) -> None:
    subject, old = given
    grant = subject.grants.first()
    subject_access_token_rotate(subject=subject)
    replaced = Client().get(_receipt_url(old, grant.pk))
    assert replaced.status_code == 410 and b"eyJ" not in replaced.content
    forged = Client().get(_receipt_url("A" * 43, grant.pk))
    assert forged.status_code == 404 and b"eyJ" not in forged.content
    assert replaced["Cache-Control"] == forged["Cache-Control"] == "no-store, private"


def test_the_receipt_download_takes_get_only(given) -> None:
    subject, token = given
    assert Client().post(_receipt_url(token, subject.grants.first().pk)).status_code == 405


# --- the public keys -----------------------------------------------------------------------------------------------


def test_the_jwks_lists_every_key_public_and_cacheable(org_a) -> None:
    first = receipts.signing_key_current(org_a)
    second = receipts.signing_key_rotate(org_a)
    response = Client().get(f"/consent/o/{org_a.slug}/receipts/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwk-set+json"
    assert response["Cache-Control"] == "public, max-age=300" and response["Access-Control-Allow-Origin"] == "*"
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [second.kid, first.kid]
    for key in keys:
        assert key.keys() == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")


def test_the_jwks_of_an_organization_without_keys_is_empty_and_makes_none(org_a) -> None:
    assert _jwks(org_a) == {"keys": []}
    assert receipts.signing_key_list(org_a) == []


def test_the_jwks_of_an_unknown_organization_is_not_found() -> None:
    assert Client().get("/consent/o/nobody-here/receipts/jwks.json").status_code == 404


def test_the_jwks_of_one_organization_holds_none_of_anothers_keys(org_a, org_b) -> None:
    key_a = receipts.signing_key_current(org_a)
    key_b = receipts.signing_key_current(org_b)
    assert [k["kid"] for k in _jwks(org_a)["keys"]] == [key_a.kid]
    assert [k["kid"] for k in _jwks(org_b)["keys"]] == [key_b.kid]


# --- the partner API -----------------------------------------------------------------------------------------------


def _api_receipt_url(subject: Subject, grant: Grant) -> str:
    return reverse("api:consent-subject-grant-receipt", kwargs={"subject_id": subject.public_id, "grant_id": grant.pk})


def test_a_partner_reads_the_receipt_of_its_subjects_grant_with_a_read_key(org_a) -> None:
    subject = make_subject(org_a, partner_user_id="user-1")
    grant = make_grant(subject, make_notice(org_a))
    client = api_client(make_api_key(org_a, scopes=("read",))[1])
    response = client.get(_api_receipt_url(subject, grant), HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/jose"
    claims = receipts.receipt_verify(response.content, keys=_jwks(org_a))
    assert claims["consentReceiptID"] == receipts.receipt_id(grant)
    assert claims["collectionMethod"].startswith("The partner's own user interface")
    # Whatever it asks for, the body is the JWS (errors stay JSON).
    assert client.get(_api_receipt_url(subject, grant), HTTP_ACCEPT="application/jose").status_code == 200


def test_the_api_answers_not_found_for_a_grant_of_another_subject(org_a, client_a) -> None:
    subject = make_subject(org_a)
    other = make_subject(org_a)
    grant = make_grant(other, make_notice(org_a))
    response = client_a.get(_api_receipt_url(subject, grant))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    huge = reverse("api:consent-subject-grant-receipt", kwargs={"subject_id": subject.public_id, "grant_id": 2**70})
    assert client_a.get(huge).status_code == 404


def test_the_api_answers_not_found_for_another_organizations_grant_under_its_own_subject(
    org_a, org_b, client_a
) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a))
    foreign = make_grant(make_subject(org_b), make_notice(org_b))
    response = client_a.get(_api_receipt_url(subject, foreign))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert foreign.notice.controller_name not in response.content.decode()


def test_the_api_receipt_needs_credentials(org_a) -> None:
    subject = make_subject(org_a)
    grant = make_grant(subject, make_notice(org_a))
    response = api_client().get(_api_receipt_url(subject, grant))
    assert response.status_code in (401, 403) and "error" in response.json()
