"""Partner consent API: subjects by the partner's user id (hashed), grants under a published notice only,
idempotent withdrawal, state and history, in the one error shape."""

import hashlib
import hmac

import pytest
from django.utils import timezone

from consent.guards import has_consent
from consent.models import Grant, LedgerEntry, Subject
from consent.services import notice_draft_copy, notice_publish, notice_retire
from tests.factories import make_notice

pytestmark = pytest.mark.django_db

BASE = "/api/v1/consent"


def _subject(client, user_id: str = "user-42") -> dict:
    return client.post(f"{BASE}/subjects/", {"partner_user_id": user_id}, format="json").json()


def _grant(client, subject_id: str, notice, **overrides):
    body = {"purposes": ["face_analysis"], "notice_hash": notice.text_hash, "language": notice.language}
    body.update(overrides)
    return client.post(f"{BASE}/subjects/{subject_id}/grants/", body, format="json")


def test_subject_is_found_again_by_the_partner_user_id_which_is_stored_only_as_a_keyed_hash(client_a, org_a) -> None:
    first = client_a.post(f"{BASE}/subjects/", {"partner_user_id": "user-42"}, format="json")
    again = client_a.post(f"{BASE}/subjects/", {"partner_user_id": "user-42"}, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    subject = Subject.objects.get()
    expected = hmac.new(org_a.subject_hash_secret.encode(), b"user-42", hashlib.sha256).hexdigest()
    assert subject.partner_ref_hash == expected
    assert "user-42" not in str(Subject.objects.values().get())


def test_same_partner_user_id_in_two_organizations_gives_two_unrelated_subjects(client_a, client_b) -> None:
    a, b = _subject(client_a), _subject(client_b)
    assert a["id"] != b["id"]
    hashes = set(Subject.objects.values_list("partner_ref_hash", flat=True))
    assert len(hashes) == 2


def test_notices_list_offers_published_versions_with_their_hash(client_a, org_a) -> None:
    notice = make_notice(org_a, language="de")
    make_notice(org_a, language="en", publish=False)
    results = client_a.get(f"{BASE}/notices/").json()["results"]
    assert [(n["text_hash"], n["language"]) for n in results] == [(notice.text_hash, "de")]
    assert results[0]["text"] == notice.text


def test_grant_under_the_published_notice_is_recorded_and_the_guard_allows(client_a, org_a) -> None:
    notice = make_notice(org_a)
    subject = _subject(client_a)
    response = _grant(client_a, subject["id"], notice, ip_address="198.51.100.77", user_agent="Mozilla/5.0 (iPhone)")
    assert response.status_code == 201, response.content
    grant = Grant.objects.get()
    assert grant.notice_hash == notice.text_hash and grant.channel == "partner_api"
    assert grant.evidence == {"ip_prefix": "198.51.100.0/24", "user_agent_class": "browser/mobile"}
    assert has_consent(organization_id=org_a.pk, subject_id=grant.subject_id, purpose="face_analysis")
    state = client_a.get(f"{BASE}/subjects/{subject['id']}/").json()
    assert {s["purpose"]: s["state"] for s in state["consent"]}["face_analysis"] == "active"



def test_state_of_an_erased_subject_is_not_active_though_its_grant_is_open(client_a, org_a) -> None:
    subject = _subject(client_a)
    assert _grant(client_a, subject["id"], make_notice(org_a)).status_code == 201
    Subject.objects.update(erased_at=timezone.now())
    state = client_a.get(f"{BASE}/subjects/{subject['id']}/").json()
    face = {s["purpose"]: s for s in state["consent"]}["face_analysis"]
    assert face["state"] == face["grant"]["state"] == "subject_erased"
    assert Grant.objects.get().ended_at is None

@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("forged_hash", "unknown_notice"),
        ("draft", "unknown_notice"),
        ("superseded", "notice_not_published"),
        ("retired", "notice_not_published"),
        ("language", "language_mismatch"),
        ("purpose_not_in_notice", "purpose_not_in_notice"),
        ("unknown_purpose", "invalid"),
        ("unsupported_language", "invalid"),
        ("other_organizations_notice", "unknown_notice"),
    ],
)
def test_bad_grants_are_4xx_and_write_nothing(client_a, org_a, org_b, case: str, code: str) -> None:
    notice = make_notice(org_a)
    subject = _subject(client_a)
    overrides: dict = {}
    if case == "forged_hash":
        overrides["notice_hash"] = "f" * 64
    elif case == "draft":
        draft = notice_draft_copy(notice=notice)
        overrides["notice_hash"] = hashlib.sha256(b"anything").hexdigest()
        assert draft.text_hash == ""
    elif case == "superseded":
        notice_publish(notice=notice_draft_copy(notice=notice))
    elif case == "retired":
        notice_retire(notice=notice)
    elif case == "language":
        overrides["language"] = "de"
    elif case == "purpose_not_in_notice":
        overrides["purposes"] = ["face_analysis", "personalization"]
    elif case == "unknown_purpose":
        overrides["purposes"] = ["mind_reading"]
    elif case == "unsupported_language":
        overrides["language"] = "fr"
    elif case == "other_organizations_notice":
        overrides["notice_hash"] = make_notice(org_b).text_hash
    ledger_before = LedgerEntry.objects.count()
    response = _grant(client_a, subject["id"], notice, **overrides)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not Grant.objects.exists() and LedgerEntry.objects.count() == ledger_before


def test_withdraw_is_idempotent_and_reports_state(client_a, org_a) -> None:
    notice = make_notice(org_a, purposes=("face_analysis", "personalization"))
    subject = _subject(client_a)
    _grant(client_a, subject["id"], notice, purposes=["face_analysis", "personalization"])
    url = f"{BASE}/subjects/{subject['id']}/withdraw/"
    first = client_a.post(url, {"purposes": ["personalization"]}, format="json").json()
    second = client_a.post(url, {"purposes": ["personalization"]}, format="json").json()
    assert [g["purpose"] for g in first["withdrawn"]] == ["personalization"] and second["withdrawn"] == []
    states = {s["purpose"]: s["state"] for s in second["consent"]}
    assert states["personalization"] == "withdrawn" and states["face_analysis"] == "active"
    assert LedgerEntry.objects.filter(event="withdrawn").count() == 1
    everything = client_a.post(url, {}, format="json").json()
    assert [g["purpose"] for g in everything["withdrawn"]] == ["face_analysis"]


def test_history_lists_the_subjects_events_with_chain_hashes(client_a, org_a) -> None:
    notice = make_notice(org_a)
    subject = _subject(client_a)
    _grant(client_a, subject["id"], notice)
    client_a.post(f"{BASE}/subjects/{subject['id']}/withdraw/", {}, format="json")
    history = client_a.get(f"{BASE}/subjects/{subject['id']}/history/").json()["results"]
    assert [h["event"] for h in history] == ["granted", "withdrawn"]
    assert history[1]["prev_hash"] == history[0]["hash"]


def test_unknown_and_malformed_subject_ids_are_the_same_404(client_a) -> None:
    for subject_id in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"]:
        response = client_a.get(f"{BASE}/subjects/{subject_id}/")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_read_only_key_cannot_grant(org_a) -> None:
    from tests.conftest import api_client
    from tests.factories import make_api_key

    notice = make_notice(org_a)
    _, raw = make_api_key(org_a, scopes=("read",))
    client = api_client(raw)
    assert client.post(f"{BASE}/subjects/", {"partner_user_id": "x"}, format="json").status_code == 403
    assert notice.text_hash in client.get(f"{BASE}/notices/").content.decode()
