"""campaigns.services and campaigns.selectors: a capture session opens only in a running campaign of the
organization, carrying what that campaign's camera needs; campaign lookups are scoped and fail closed."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.selectors import campaign_get
from campaigns.services import capture_session_open
from faceanalysis.errors import ConsentRequired, FaceAnalysisError
from faceanalysis.models import CaptureSession
from tests.factories import make_campaign, make_grant, make_notice, make_subject

pytestmark = pytest.mark.django_db

BOTH = ("face_analysis", "personalization")


def _consented(org, purposes=BOTH):
    subject = make_subject(org)
    make_grant(subject, make_notice(org, language="en", purposes=purposes))
    return subject


def test_a_session_keeps_the_campaigns_purposes_and_attributes(org_a) -> None:
    subject = _consented(org_a)
    campaign = make_campaign(org_a, purposes=BOTH)
    session, token = capture_session_open(organization=org_a, subject=subject, campaign=campaign, source="partner")
    assert token.startswith("vcs_")
    assert session.campaign_id == campaign.pk
    assert session.required_purpose_list == ["face_analysis", "personalization"]
    assert session.derived_attributes == campaign.derived_attributes
    assert session.derived_attribute_set == campaign.derived_attribute_set


def test_an_ended_campaign_opens_no_session(org_a) -> None:
    subject = _consented(org_a)
    campaign = make_campaign(org_a, status="ended")
    with pytest.raises(FaceAnalysisError) as raised:
        capture_session_open(organization=org_a, subject=subject, campaign=campaign, source="partner")
    assert (raised.value.code, raised.value.status_code, raised.value.message) == (
        "campaign_ended", 409, "The campaign has ended.")
    assert not CaptureSession.objects.exists()


def test_another_organizations_campaign_or_subject_is_not_found(org_a, org_b) -> None:
    subject = _consented(org_a)
    for campaign, who in ((make_campaign(org_b), subject), (make_campaign(org_a), _consented(org_b))):
        with pytest.raises(FaceAnalysisError) as raised:
            capture_session_open(organization=org_a, subject=who, campaign=campaign, source="partner")
        assert (raised.value.code, raised.value.status_code) == ("not_found", 404)
    assert not CaptureSession.objects.exists()


def test_a_required_purpose_without_consent_is_refused_with_the_guards_reason(org_a) -> None:
    subject = _consented(org_a, purposes=("face_analysis",))
    campaign = make_campaign(org_a, purposes=BOTH)
    with pytest.raises(ConsentRequired) as raised:
        capture_session_open(organization=org_a, subject=subject, campaign=campaign, source="partner")
    assert raised.value.details == {"reason": "no_grant", "purpose": "personalization"}
    assert not CaptureSession.objects.exists()


def test_campaign_get_is_scoped_and_fails_closed(org_a, org_b) -> None:
    mine = make_campaign(org_a, status="ended")
    theirs = make_campaign(org_b)
    assert campaign_get(organization=org_a, public_id=mine.public_id) == mine  # any status
    assert campaign_get(organization=org_a, public_id=theirs.public_id) is None
    assert campaign_get(organization=None, public_id=mine.public_id) is None
    for malformed in ("", "x" * 33, "a\x00b", None, 42, ["x"]):
        assert campaign_get(organization=org_a, public_id=malformed) is None


def test_both_session_start_endpoints_answer_an_ended_campaign_with_409(org_a, client_a) -> None:
    from consent.services import subject_access_token_rotate

    subject = _consented(org_a)
    campaign = make_campaign(org_a, status="ended")
    ended = {"error": {"code": "campaign_ended", "message": "The campaign has ended.", "details": {}}}
    by_partner = client_a.post(
        "/api/v1/capture-sessions/", {"subject": str(subject.public_id), "campaign": campaign.public_id}, format="json"
    )
    assert (by_partner.status_code, by_partner.json()) == (409, ended)
    token = subject_access_token_rotate(subject=subject)
    by_end_user = APIClient().post(
        "/api/v1/capture/sessions/", {"access_token": token, "campaign": campaign.public_id}, format="json"
    )
    assert (by_end_user.status_code, by_end_user.json()) == (409, ended)
    assert not CaptureSession.objects.exists()
