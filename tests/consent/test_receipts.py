"""Signed consent receipts (consent.receipts): keys made once and kept sealed, Kantara v1.1 claims, signatures
that verify with the published keys, keep verifying after a rotation, and fail when changed or checked with
another organization's keys."""

import base64
import json
import logging
import uuid
from datetime import UTC, timedelta

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import timezone
from joserfc import jws
from joserfc.jwk import OKPKey

from consent import receipts
from consent.models import Purpose, SigningKey
from consent.receipts import ReceiptInvalid, ReceiptKeysInvalid
from consent.services import consent_withdraw, notice_draft_create, notice_publish, retention_policy_set
from tests.factories import make_grant, make_notice, make_organization, make_subject

# consent.receipts keeps "EdDSA" (RFC 8037) on purpose; pytest resets the module's filter for that warning.
pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]


def _grant(organization=None, *, purposes=("face_analysis",), channel="consent_page", notice=None):
    organization = organization or make_organization()
    notice = notice or make_notice(organization, purposes=purposes)
    return make_grant(make_subject(organization), notice, purposes=purposes, channel=channel)


def _payload(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- keys ------------------------------------------------------------------------------------------------------------


def test_the_first_signing_key_is_made_on_first_use_and_then_reused(org_a) -> None:
    assert not SigningKey.objects.filter(organization=org_a).exists()
    key = receipts.signing_key_current(org_a)
    assert receipts.signing_key_current(org_a).pk == key.pk
    assert SigningKey.objects.filter(organization=org_a).count() == 1
    jwk = receipts.signing_key_jwk(key)
    assert len(base64.urlsafe_b64decode(key.public_key + "=")) == 32
    assert key.kid == OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": key.public_key}).thumbprint()
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": key.public_key, "kid": key.kid, "use": "sig", "alg": "EdDSA"}


def test_the_private_key_is_stored_sealed_and_opens_only_on_its_own_row(org_a, org_b) -> None:
    key = receipts.signing_key_current(org_a)
    private_raw = receipts._unseal(key)
    assert private_raw is not None and len(private_raw) == 32
    assert base64.urlsafe_b64encode(private_raw).rstrip(b"=").decode() not in key.private_key_encrypted
    assert private_raw.hex() not in key.private_key_encrypted
    # The same sealed bytes on another organization's row (or under another kid) do not open.
    moved = SigningKey(organization=org_b, kid=key.kid, public_key=key.public_key,
                       private_key_encrypted=key.private_key_encrypted)
    assert receipts._unseal(moved) is None
    renamed = SigningKey(organization=org_a, kid="other", public_key=key.public_key,
                         private_key_encrypted=key.private_key_encrypted)
    assert receipts._unseal(renamed) is None


def test_a_key_sealed_under_an_old_secret_opens_with_the_fallback(org_a, settings) -> None:
    key = receipts.signing_key_current(org_a)
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-0123456789-0123456789-0123456789"
    assert receipts._unseal(key) is None
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert receipts._unseal(key) is not None


def test_a_key_no_secret_opens_is_retired_and_its_receipts_still_verify(org_a, settings, caplog) -> None:
    grant = _grant(org_a)
    old_token = receipts.receipt_sign(grant)
    old_key = receipts.signing_key_current(org_a)
    settings.SECRET_KEY = "a-new-secret-key-0123456789-0123456789-0123456789"
    with caplog.at_level(logging.DEBUG):
        new_token = receipts.receipt_sign(grant)
    old_key.refresh_from_db()
    assert old_key.retired_at is not None
    assert _header(new_token)["kid"] != old_key.kid
    jwks = receipts.receipt_jwks(org_a)
    assert receipts.receipt_verify(old_token, keys=jwks)["consentReceiptID"] == receipts.receipt_id(grant)
    assert receipts.receipt_verify(new_token, keys=jwks)["consentReceiptID"] == receipts.receipt_id(grant)
    # The log names the key, never its private half.
    assert old_key.kid in caplog.text and old_key.private_key_encrypted not in caplog.text


def test_rotation_retires_the_old_key_keeps_it_published_and_old_receipts_valid(org_a) -> None:
    grant = _grant(org_a)
    before = receipts.receipt_sign(grant)
    first = receipts.signing_key_current(org_a)
    second = receipts.signing_key_rotate(org_a)
    first.refresh_from_db()
    assert first.retired_at is not None and second.retired_at is None
    assert receipts.signing_key_current(org_a).pk == second.pk
    after = receipts.receipt_sign(grant)
    assert _header(before)["kid"] == first.kid and _header(after)["kid"] == second.kid
    jwks = receipts.receipt_jwks(org_a)
    assert [k["kid"] for k in jwks["keys"]] == [second.kid, first.kid]  # current first
    assert receipts.receipt_verify(before, keys=jwks)["publicKey"]["kid"] == first.kid
    assert receipts.receipt_verify(after, keys=jwks)["publicKey"]["kid"] == second.kid
    # Only the current key's row may be unretired.
    third = receipts.signing_key_rotate(org_a)
    assert SigningKey.objects.filter(organization=org_a, retired_at__isnull=True).get().pk == third.pk


def test_one_current_key_per_organization_is_held_by_the_database(org_a) -> None:
    from django.db import IntegrityError, transaction

    receipts.signing_key_current(org_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        receipts._signing_key_create(org_a, timezone.now())


def test_the_losing_creation_of_a_race_reads_the_winners_key(org_a, monkeypatch) -> None:
    """As two requests that both found no key: the second creation hits the constraint and takes the first's."""
    winner = receipts.signing_key_current(org_a)
    calls = iter([None])
    real_current = receipts._current_key
    monkeypatch.setattr(receipts, "_current_key", lambda org: next(calls, real_current(org)))
    assert receipts.signing_key_current(org_a).pk == winner.pk
    assert SigningKey.objects.filter(organization=org_a).count() == 1


def test_signing_keys_are_not_in_the_admin() -> None:
    assert not admin.site.is_registered(SigningKey)


# --- claims ----------------------------------------------------------------------------------------------------------

KANTARA_TYPES = {
    "version": str, "jurisdiction": str, "consentTimestamp": int, "collectionMethod": str, "consentReceiptID": str,
    "publicKey": dict, "language": str, "piiPrincipalId": str, "piiControllers": list, "policyUrl": str,
    "services": list, "sensitive": bool, "spiCat": list,
}


def test_claims_carry_every_kantara_v1_1_field_with_its_type(settings) -> None:
    settings.VISAGE_PUBLIC_URL = "https://visage.example"
    grant = _grant()
    claims = receipts.receipt_claims(grant)
    for field, kind in KANTARA_TYPES.items():
        assert isinstance(claims[field], kind), field
    assert claims["version"] == "KI-CR-v1.1.0"
    assert claims["consentTimestamp"] == int(grant.granted_at.timestamp())
    assert claims["collectionMethod"].startswith("Web consent page")
    assert uuid.UUID(claims["consentReceiptID"]).version == 5
    assert claims["language"] == "en"
    assert claims["piiPrincipalId"] == str(grant.subject.public_id)
    assert claims["sensitive"] is True and claims["spiCat"] == ["biometric"]
    assert claims["policyUrl"] == f"https://visage.example/consent/o/{grant.organization.slug}/notices/{grant.notice_hash}/"
    assert claims["jwksUrl"] == f"https://visage.example/consent/o/{grant.organization.slug}/receipts/jwks.json"
    (controller,) = claims["piiControllers"]
    assert controller["piiController"] == grant.notice.controller_name
    assert controller["contact"] == "privacy@example.test" and controller["email"] == "privacy@example.test"
    assert isinstance(controller["address"], dict) and isinstance(controller["onBehalf"], bool)
    (service,) = claims["services"]
    assert service["service"] == "Visage face analytics"
    (purpose,) = service["purposes"]
    assert purpose["purpose"] == "Face analysis"
    assert purpose["consentType"] == "EXPLICIT" and purpose["primaryPurpose"] is True
    assert isinstance(purpose["purposeCategory"], list) and purpose["piiCategory"][0] == "biometric"
    expires = grant.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert purpose["termination"] == f"{expires} or withdrawal on the 'my data' page"
    assert purpose["thirdPartyDisclosure"] is False and "thirdPartyName" not in purpose
    # Extensions.
    assert claims["noticeHash"] == grant.notice_hash and claims["grantState"] == "active"
    assert claims["organization"] == grant.organization.slug and claims["purposeKey"] == "face_analysis"
    assert isinstance(claims["iat"], int) and claims["derivedAttributes"]


def test_the_receipt_id_is_stable_per_grant_and_differs_between_grants(org_a) -> None:
    grant = _grant(org_a)
    other = _grant(org_a)
    first = receipts.receipt_claims(grant)["consentReceiptID"]
    receipts.signing_key_rotate(org_a)
    assert receipts.receipt_claims(grant, now=timezone.now() + timedelta(days=3))["consentReceiptID"] == first
    assert receipts.receipt_claims(other)["consentReceiptID"] != first


def test_partner_sharing_is_disclosed_to_the_notices_recipients(org_a) -> None:
    retention_policy_set(organization=org_a, feature_retention_days=365, grant_validity_days=365)
    notice = notice_publish(notice=notice_draft_create(
        organization=org_a, language="de", purposes=(Purpose.PARTNER_SHARING,), controller_name="Acme GmbH",
        controller_contact="Acme GmbH, Hauptstraße 1, 10115 Berlin; Tel. +49 30 1234567; datenschutz@acme.test",
        recipients="Partner Media AG (Werbung)",
    ))
    grant = make_grant(make_subject(org_a), notice, channel="partner_api")
    claims = receipts.receipt_claims(grant)
    (purpose,) = claims["services"][0]["purposes"]
    assert purpose["thirdPartyDisclosure"] is True and purpose["thirdPartyName"] == "Partner Media AG (Werbung)"
    assert claims["language"] == "de" and claims["collectionMethod"].startswith("The partner's own user interface")
    (controller,) = claims["piiControllers"]
    assert controller["email"] == "datenschutz@acme.test" and controller["phone"] == "+49 30 1234567"
    assert controller["address"] == {"streetAddress": "Acme GmbH, Hauptstraße 1, 10115 Berlin"}


def test_contact_parts_keep_the_whole_text_as_address_when_nothing_parses() -> None:
    parts = receipts.controller_contact_parts("Postfach 12, Berlin")
    assert parts == {"address": {"streetAddress": "Postfach 12, Berlin"}}


def test_jurisdiction_is_the_policys_in_words_else_the_controllers_address(org_a) -> None:
    grant = _grant(org_a)
    assert receipts.receipt_claims(grant)["jurisdiction"] == "European Union (GDPR)"
    from consent.models import RetentionPolicy

    RetentionPolicy.objects.filter(organization=org_a).update(jurisdiction="us_tx")
    assert receipts.receipt_claims(grant)["jurisdiction"] == "United States, Texas (CUBI: one year)"
    RetentionPolicy.objects.filter(organization=org_a).delete()
    assert receipts.receipt_claims(grant)["jurisdiction"] == grant.notice.controller_contact


def test_the_state_at_signing_follows_the_grant(org_a) -> None:
    grant = _grant(org_a)
    consent_withdraw(organization=org_a, subject=grant.subject, channel="my_data_page")
    grant.refresh_from_db()
    claims = receipts.receipt_verify(receipts.receipt_sign(grant), keys=receipts.receipt_jwks(org_a))
    assert claims["grantState"] == "withdrawn"
    assert receipts.receipt_claims(_grant(org_a), now=timezone.now() + timedelta(days=400))["grantState"] == "expired"


def test_urls_use_the_requests_host_when_there_is_one(settings) -> None:
    settings.ALLOWED_HOSTS = ["consent.shop.example"]
    grant = _grant()
    request = RequestFactory().get("/", HTTP_HOST="consent.shop.example", secure=True)
    claims = receipts.receipt_claims(grant, request)
    assert claims["policyUrl"].startswith("https://consent.shop.example/consent/o/")
    assert claims["jwksUrl"].startswith("https://consent.shop.example/consent/o/")


# --- signing and verifying -------------------------------------------------------------------------------------------


def test_a_receipt_is_a_compact_eddsa_jws_that_verifies_with_the_published_keys(org_a) -> None:
    grant = _grant(org_a)
    token = receipts.receipt_sign(grant)
    header = _header(token)
    key = receipts.signing_key_current(org_a)
    assert token.count(".") == 2
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    claims = receipts.receipt_verify(token, keys=receipts.receipt_jwks(org_a))
    assert claims == _payload(token)
    assert claims["publicKey"] == receipts.signing_key_jwk(key)
    # Any JOSE library verifies it with the JWK alone.
    verified = jws.deserialize_compact(token, OKPKey.import_key(receipts.signing_key_jwk(key)), algorithms=["EdDSA"])
    assert json.loads(verified.payload)["piiPrincipalId"] == str(grant.subject.public_id)
    # A list of JWKs does as well as a JWKS.
    assert receipts.receipt_verify(token, keys=[receipts.signing_key_jwk(key)]) == claims


def test_a_changed_payload_fails_with_bad_signature(org_a) -> None:
    token = receipts.receipt_sign(_grant(org_a))
    head, payload, signature = token.split(".")
    claims = _payload(token)
    claims["grantState"] = "active" if claims["grantState"] != "active" else "withdrawn"
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(f"{head}.{_b64(claims)}.{signature}", keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "bad_signature"
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(f"{head}.{payload}.{flipped}", keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "bad_signature"


def test_a_key_of_organization_a_never_verifies_a_receipt_of_b(org_a, org_b) -> None:
    receipts.signing_key_current(org_a)
    token_b = receipts.receipt_sign(_grant(org_b))
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(token_b, keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "unknown_kid"
    # B's receipt under A's kid: A's key does not match B's signature.
    key_a = receipts.signing_key_current(org_a)
    _, payload, signature = token_b.split(".")
    relabelled = f"{_b64({'alg': 'EdDSA', 'kid': key_a.kid, 'typ': 'JWT'})}.{payload}.{signature}"
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(relabelled, keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "bad_signature"
    # Naming A as its organization changes the payload, and A publishes no key of B.
    claims = _payload(token_b)
    claims["organization"] = org_a.slug
    forged = f"{token_b.split('.')[0]}.{_b64(claims)}.{signature}"
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify_published(forged)
    assert error.value.reason == "unknown_kid"
    assert receipts.receipt_verify_published(token_b)["organization"] == org_b.slug


def test_another_algorithm_or_no_signature_is_refused(org_a) -> None:
    token = receipts.receipt_sign(_grant(org_a))
    head, payload, signature = token.split(".")
    kid = _header(token)["kid"]
    for alg in ("none", "HS256", "Ed25519"):
        with pytest.raises(ReceiptInvalid) as error:
            receipts.receipt_verify(f"{_b64({'alg': alg, 'kid': kid})}.{payload}.{signature}",
                                    keys=receipts.receipt_jwks(org_a))
        assert error.value.reason == "unsupported_algorithm"
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(f"{head}.{payload}.", keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "bad_signature"


@pytest.mark.parametrize("token", [
    "", "not a jws", "a.b", "a.b.c.d", b"\xff\xfe", "e30.e30.e30", "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.AA",
    "x" * (receipts.MAX_RECEIPT_BYTES + 1),
])
def test_anything_that_is_not_a_receipt_is_malformed(token, org_a) -> None:
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(token, keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "malformed"


def test_a_jws_that_is_not_a_kantara_receipt_is_malformed(org_a) -> None:
    key, private = receipts._signer(org_a)
    token = jws.serialize_compact({"alg": "EdDSA", "kid": key.kid}, b'{"sub": "x"}', private, algorithms=["EdDSA"])
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify(token, keys=receipts.receipt_jwks(org_a))
    assert error.value.reason == "malformed"


def test_a_key_set_with_a_private_key_or_no_kid_is_refused(org_a) -> None:
    token = receipts.receipt_sign(_grant(org_a))
    _, private = receipts._signer(org_a)
    with pytest.raises(ReceiptKeysInvalid):
        receipts.receipt_verify(token, keys={"keys": [private.as_dict(private=True)]})
    with pytest.raises(ReceiptKeysInvalid):
        receipts.receipt_verify(token, keys={"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]})
    with pytest.raises(ReceiptKeysInvalid):
        receipts.receipt_verify(token, keys={"nope": []})


def test_an_unknown_organization_in_the_receipt_is_said_so(org_a) -> None:
    token = receipts.receipt_sign(_grant(org_a))
    head, _, signature = token.split(".")
    claims = {**_payload(token), "organization": "nowhere"}
    with pytest.raises(ReceiptInvalid) as error:
        receipts.receipt_verify_published(f"{head}.{_b64(claims)}.{signature}")
    assert error.value.reason == "unknown_organization"


def test_grants_of_another_subject_or_organization_are_not_found(org_a, org_b) -> None:
    grant = _grant(org_a)
    other_subject = make_subject(org_a)
    assert receipts.receipt_grant_get(organization=org_a, subject=grant.subject, grant_id=grant.pk) == grant
    assert receipts.receipt_grant_get(organization=org_a, subject=other_subject, grant_id=grant.pk) is None
    assert receipts.receipt_grant_get(organization=org_b, subject=grant.subject, grant_id=grant.pk) is None
    assert receipts.receipt_grant_get(organization=None, subject=grant.subject, grant_id=grant.pk) is None
    assert receipts.receipt_grant_get(organization=org_a, subject=grant.subject, grant_id=2**70) is None
