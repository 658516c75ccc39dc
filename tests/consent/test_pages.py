"""Public consent pages: the "my data" page behind an unguessable token, the notice text, the retention schedule."""

import pytest
from django.test import Client

from consent.guards import has_consent
from consent.models import LedgerEntry, Subject
from consent.selectors import subject_get_by_access_token
from consent.services import consent_give_on_page, subject_access_token_rotate
from tests.factories import make_notice

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")


@pytest.fixture
def given(org_a) -> tuple[Subject, str]:
    notice = make_notice(org_a, purposes=PURPOSES)
    return consent_give_on_page(
        organization=org_a, notice=notice, purposes=PURPOSES, offered_purposes=PURPOSES, context_ref="campaign:x"
    )


def _my_data(token: str) -> str:
    return f"/consent/my-data/{token}/"


def test_token_is_long_random_and_only_its_hash_is_stored(given) -> None:
    subject, token = given
    assert len(token) >= 43
    subject.refresh_from_db()
    assert token not in subject.access_token_hash and len(subject.access_token_hash) == 64
    assert subject_get_by_access_token(token=token) == subject


def test_my_data_page_lists_grants_and_is_private(given) -> None:
    subject, token = given
    response = Client().get(_my_data(token))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Face analysis" in html and "Personalization from face features" in html
    assert response["Cache-Control"] == "no-store, private" and response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("forged", ["x", "A" * 43, "", "%00" * 3])
def test_forged_token_is_not_found(given, forged) -> None:
    assert Client().get(_my_data(forged) if forged else "/consent/my-data//").status_code == 404


def test_rotated_token_stops_working_and_the_new_one_works(given) -> None:
    subject, old = given
    response = Client().post(_my_data(old) + "rotate/", {"lang": "en"})
    assert response.status_code == 303
    new_url = response["Location"].split("?")[0]
    assert new_url != _my_data(old)
    assert Client().get(_my_data(old)).status_code == 410  # replaced, and says so (see below)
    assert Client().post(_my_data(old) + "withdraw/", {"purpose": "all"}).status_code == 410
    assert Client().get(new_url).status_code == 200


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_replaced_link_says_so_and_reveals_nothing_about_its_subject(settings, given, debug) -> None:
    settings.DEBUG = debug
    subject, first = given
    second = subject_access_token_rotate(subject=subject)
    third = subject_access_token_rotate(subject=subject)  # every earlier link says it, not only the last one
    for old in (first, second):
        for response in (
            Client().get(_my_data(old), HTTP_ACCEPT_LANGUAGE="en"),
            Client().post(_my_data(old) + "withdraw/", {"purpose": "all", "lang": "en"}),
            Client().post(_my_data(old) + "rotate/", {"lang": "en"}),
        ):
            html = response.content.decode()
            assert response.status_code == 410 and "This link was replaced by a newer one" in html
            assert response["Cache-Control"] == "no-store, private"
            for secret in (str(subject.public_id), subject.organization.name, "Face analysis", third, "Traceback"):
                assert secret not in html
    german = Client().get(_my_data(first), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Dieser Link wurde durch einen neueren ersetzt" in german
    assert has_consent(organization_id=subject.organization_id, subject_id=subject.pk, purpose="face_analysis")
    assert Client().get(_my_data(third)).status_code == 200


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_link_that_never_existed_is_a_plain_404_not_a_replaced_one(settings, given, debug) -> None:
    settings.DEBUG = debug
    response = Client().get(_my_data("A" * 43), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 404 and "This link does not work" in html and "replaced" not in html
    assert "Traceback" not in html and "URLconf" not in html


def test_withdraw_one_purpose_in_one_click(given, org_a) -> None:
    subject, token = given
    response = Client().post(_my_data(token) + "withdraw/", {"purpose": "personalization", "lang": "de"})
    assert response.status_code == 303 and "done=withdrawn" in response["Location"]
    assert not has_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="personalization")
    assert has_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="face_analysis")
    entry = LedgerEntry.objects.get(event="withdrawn")
    assert entry.purposes == "personalization" and entry.channel == "my_data_page"
    assert entry.context_ref == "campaign:x" and entry.evidence["user_agent_class"] == "unknown"


def test_withdrawing_twice_writes_one_ledger_entry(given) -> None:
    _, token = given
    for _ in range(2):
        assert Client().post(_my_data(token) + "withdraw/", {"purpose": "all"}).status_code == 303
    assert LedgerEntry.objects.filter(event="withdrawn").count() == 1


def test_withdraw_needs_csrf_and_a_known_purpose(given) -> None:
    subject, token = given
    assert Client(enforce_csrf_checks=True).post(_my_data(token) + "withdraw/", {"purpose": "all"}).status_code == 403
    assert Client().post(_my_data(token) + "withdraw/", {"purpose": "mind_reading"}).status_code == 400
    assert not LedgerEntry.objects.filter(event="withdrawn").exists()


def test_a_withdrawal_records_its_purge_request_in_its_transaction_and_dispatches_it_after_commit(
    given, org_a, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from consent import purging
    from consent.models import PurgePart, PurgeRequest

    subject, token = given
    sent: list[list[int]] = []
    monkeypatch.setattr(purging, "purge_parts_dispatch", lambda *, part_ids: sent.append(part_ids))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Client().post(_my_data(token) + "withdraw/", {"purpose": "all"})
    # Recorded with the withdrawal; nothing sent before commit.
    request = PurgeRequest.objects.get()
    assert (request.organization_id, request.subject_id, request.subject_ref) == (
        org_a.pk, subject.pk, str(subject.public_id))
    assert (request.reason, request.purpose_list) == ("consent_withdrawn", ["face_analysis", "personalization"])
    parts = list(request.parts.values_list("pk", "purger", "status"))
    assert sorted((purger, status) for _, purger, status in parts) == [
        ("campaigns.decision_log", PurgePart.Status.OWED), ("faceanalysis.face_data", PurgePart.Status.OWED),
        ("segments.membership", PurgePart.Status.OWED)]
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [[pk for pk, _, _ in parts]]


def test_rotation_service_invalidates_the_previous_token(given) -> None:
    subject, old = given
    new = subject_access_token_rotate(subject=subject)
    assert subject_get_by_access_token(token=old) is None
    assert subject_get_by_access_token(token=new) == subject


def test_retention_schedule_is_public_in_both_languages(org_a) -> None:
    make_notice(org_a)
    en = Client().get(f"/consent/o/{org_a.slug}/retention/?lang=en").content.decode()
    de = Client().get(f"/consent/o/{org_a.slug}/retention/?lang=de").content.decode()
    assert "Retention schedule of" in en and "at most 365 days" in en
    assert "Aufbewahrungsfristen von" in de and "höchstens 365 Tage" in de


def test_notice_page_shows_the_exact_text_and_hash(org_a, org_b) -> None:
    notice = make_notice(org_a, language="de")
    html = Client().get(f"/consent/o/{org_a.slug}/notices/{notice.text_hash}/").content.decode()
    assert notice.text_hash in html and "Verantwortlicher" in html
    assert Client().get(f"/consent/o/{org_b.slug}/notices/{notice.text_hash}/").status_code == 404
