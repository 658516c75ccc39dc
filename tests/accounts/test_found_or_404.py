"""One scoped object-or-404: every API lookup of a key, subject, capture session or campaign answers the same 404
for "missing" and "another organization's", in the one error shape, with its message."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.exceptions import NotFound

from accounts.api.base import found_or_404
from consent.services import subject_access_token_rotate
from tests.conftest import api_client
from tests.faceanalysis.factories import make_campaign, make_capture_session, make_consented_subject
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "details": {}}}


def _missing(message: str) -> dict:
    return {"error": {"code": "not_found", "message": message, "details": {}}}


def test_found_or_404_passes_what_was_found_and_refuses_none() -> None:
    found = object()
    assert found_or_404(found) is found
    assert found_or_404(0) == 0  # only None is "not found"
    with pytest.raises(NotFound) as raised:
        found_or_404(None)
    assert (str(raised.value.detail), raised.value.detail.code) == ("Not found.", "not_found")
    with pytest.raises(NotFound, match="No such campaign."):
        found_or_404(None, message="No such campaign.")


def test_a_foreign_and_a_missing_key_subject_or_session_are_the_same_404(org_a, org_b, client_a) -> None:
    foreign_key, _ = make_api_key(org_b)
    foreign_subject, _ = make_consented_subject(org_b)
    foreign_session, _ = make_capture_session(org_b)
    for foreign, missing in (
        (f"/api/v1/keys/{foreign_key.prefix}/", "/api/v1/keys/nokey123/"),
        (f"/api/v1/consent/subjects/{foreign_subject.public_id}/", f"/api/v1/consent/subjects/{uuid.uuid4()}/"),
        (f"/api/v1/capture-sessions/{foreign_session.public_id}/", f"/api/v1/capture-sessions/{uuid.uuid4()}/"),
    ):
        for url in (foreign, missing):
            response = client_a.get(url)
            assert (response.status_code, response.json()) == (404, NOT_FOUND), url


def test_a_capture_token_reaches_no_other_session(org_a) -> None:
    _, token = make_capture_session(org_a)
    other, _ = make_capture_session(org_a)
    response = api_client(token).get(f"/api/v1/capture-sessions/{other.public_id}/")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_opening_a_session_in_a_foreign_or_missing_campaign_is_the_same_404(org_a, org_b, client_a) -> None:
    subject, _ = make_consented_subject(org_a)
    foreign_subject, _ = make_consented_subject(org_b)
    foreign_campaign = make_campaign(org_b)
    mine = make_campaign(org_a)
    for body in (
        {"subject": str(subject.public_id), "campaign": foreign_campaign.public_id},
        {"subject": str(subject.public_id), "campaign": "nocampaign"},
        {"subject": str(foreign_subject.public_id), "campaign": mine.public_id},
        {"subject": str(uuid.uuid4()), "campaign": mine.public_id},
    ):
        response = client_a.post("/api/v1/capture-sessions/", body, format="json")
        assert (response.status_code, response.json()) == (404, _missing("No such subject or campaign.")), body
    token = subject_access_token_rotate(subject=subject)
    for campaign in (foreign_campaign.public_id, "nocampaign"):
        response = api_client().post("/api/v1/capture/sessions/", {"access_token": token, "campaign": campaign},
                                     format="json")
        assert (response.status_code, response.json()) == (404, _missing("No such campaign.")), campaign
