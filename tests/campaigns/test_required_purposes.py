"""Purposes the camera needs and optional extras: the consent page marks them, and every place that opens a
capture session or accepts frames for a campaign (capture page, capture-session POST, partner API, intake,
worker) asks the one guard for every required purpose together; withdrawing any of them stops capture."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from consent.services import consent_withdraw
from faceanalysis.models import CaptureSession, Frame
from faceanalysis.services.intake import IncomingFrame, frame_intake
from faceanalysis.services.worker import frame_analyze
from tests.faceanalysis.factories import astronaut_jpeg
from tests.factories import make_campaign, make_grant, make_notice, make_subject

pytestmark = pytest.mark.django_db

BOTH = ("face_analysis", "personalization")


@pytest.fixture
def fake_engine():
    """The named FAKE engine of the pipeline tests: this test claims no analysis, only that none happens."""
    from faceanalysis import inference
    from tests.faceanalysis.conftest import FakeEngine

    engine = FakeEngine()
    inference.set_engine(engine)
    yield engine
    inference.set_engine(None)


@pytest.fixture
def both_required(org_a):
    make_notice(org_a, language="en", purposes=BOTH)
    return make_campaign(org_a, purposes=BOTH)


@pytest.fixture
def one_optional(org_a):
    make_notice(org_a, language="en", purposes=BOTH)
    return make_campaign(org_a, purposes=("face_analysis",), optional=("personalization",))


def _consent(client: Client, campaign, purposes):
    page = client.get(f"/c/{campaign.public_id}/").content.decode()
    notice = re.search(r'name="notice" value="([0-9a-f]+)"', page).group(1)
    return client.post(
        f"/c/{campaign.public_id}/", {"notice": notice, "lang": "en", "action": "consent", "purposes": list(purposes)}
    )


def _start(client: Client, campaign) -> tuple[int, dict]:
    response = client.post(f"/c/{campaign.public_id}/capture/session/")
    return response.status_code, response.json()


def _start_by_partner(client_a, subject, campaign):
    return client_a.post(
        reverse("api:capture-session-list"),
        {"subject": str(subject.public_id), "campaign": campaign.public_id},
        format="json",
    )


def test_consent_page_marks_what_the_camera_needs_and_what_is_optional(one_optional) -> None:
    html = Client().get(f"/c/{one_optional.public_id}/").content.decode()
    needed = re.search(r'<div class="purpose" data-required="true">(.*?)</div>', html, re.S).group(1)
    extra = re.search(r'<div class="purpose" data-required="false">(.*?)</div>', html, re.S).group(1)
    assert 'value="face_analysis"' in needed and "needed for the camera" in needed
    assert 'value="personalization"' in extra and "optional" in extra
    assert "checked" not in needed + extra  # unticked, both
    assert 'value="consent"' in html and 'value="refuse"' in html


def test_consent_page_says_it_in_german_too(org_a, one_optional) -> None:
    make_notice(org_a, language="de", purposes=BOTH)
    html = Client().get(f"/c/{one_optional.public_id}/?lang=de").content.decode()
    assert "für die Kamera nötig" in html and "freiwillig" in html


def test_one_of_two_required_purposes_gives_no_camera_and_names_the_missing_one(both_required) -> None:
    client = Client()
    response = _consent(client, both_required, ("face_analysis",))
    assert response.status_code == 303 and response["Location"].startswith("/consent/my-data/")  # not the camera
    page = client.get(f"/c/{both_required.public_id}/capture/")
    html = page.content.decode()
    assert page.status_code == 403 and "capture.js" not in html
    assert 'data-reason="no_grant"' in html and "Personalization from face features" in html
    status, body = _start(client, both_required)
    assert status == 403 and body["error"]["code"] == "consent_required"
    assert body["error"]["details"] == {"reason": "no_grant", "purpose": "personalization"}
    assert not CaptureSession.objects.exists()
    # The page does not offer the camera to this browser either.
    assert "already-consented" not in client.get(f"/c/{both_required.public_id}/").content.decode()


def test_both_required_purposes_open_the_camera(both_required) -> None:
    client = Client()
    response = _consent(client, both_required, BOTH)
    assert response["Location"].startswith(f"/c/{both_required.public_id}/capture/")
    assert client.get(response["Location"]).status_code == 200
    status, body = _start(client, both_required)
    assert status == 201
    session = CaptureSession.objects.get(public_id=body["session"])
    assert session.required_purposes == "face_analysis,personalization"


def test_optional_purpose_not_ticked_still_opens_the_camera(one_optional) -> None:
    client = Client()
    response = _consent(client, one_optional, ("face_analysis",))
    assert response["Location"].startswith(f"/c/{one_optional.public_id}/capture/")
    status, _ = _start(client, one_optional)
    assert status == 201


def test_partner_api_needs_every_required_purpose(client_a, org_a, both_required) -> None:
    notice = make_notice(org_a, purposes=BOTH)
    partial = make_subject(org_a)
    make_grant(partial, notice, purposes=("face_analysis",))
    refused = _start_by_partner(client_a, partial, both_required)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "consent_required"
    assert refused.json()["error"]["details"] == {"reason": "no_grant", "purpose": "personalization"}
    full = make_subject(org_a)
    make_grant(full, notice)
    started = _start_by_partner(client_a, full, both_required)
    assert started.status_code == 201, started.content
    assert started.json()["required_purposes"] == list(BOTH)


def test_withdrawing_a_required_purpose_stops_intake_and_drops_queued_frames(
    client_a, org_a, both_required, fake_engine
) -> None:
    subject = make_subject(org_a)
    make_grant(subject, make_notice(org_a, purposes=BOTH))
    body = _start_by_partner(client_a, subject, both_required).json()
    session = CaptureSession.objects.get(public_id=body["id"])
    (queued,) = frame_intake(session=session, frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg")])

    consent_withdraw(organization=org_a, subject=subject, purposes=["personalization"], channel="partner_api")
    response = client_a.generic(
        "POST", reverse("api:capture-session-frames", kwargs={"session_id": session.public_id}), astronaut_jpeg(),
        content_type="image/jpeg",
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"reason": "withdrawn", "purpose": "personalization"}
    # The frame queued before the withdrawal is dropped by the worker, never analysed.
    assert frame_analyze(frame_id=queued.pk) == {"dropped": 1}
    queued.refresh_from_db()
    assert queued.status == Frame.Status.DROPPED and queued.reason == "consent_withdrawn"
    assert fake_engine.images == 0


def test_capture_needs_a_notice_naming_what_the_campaign_derives(client_a, org_a) -> None:
    campaign = make_campaign(org_a)  # derives everything, gender included
    narrow = make_notice(org_a, derived_attributes=("age",))
    subject = make_subject(org_a)
    make_grant(subject, narrow)
    refused = _start_by_partner(client_a, subject, campaign)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"reason": "notice_does_not_cover"}
    assert "does not name everything" in refused.json()["error"]["message"]
    # A campaign that derives no more than that notice names captures under it.
    assert _start_by_partner(client_a, subject, make_campaign(org_a, derived_attributes=("age",))).status_code == 201


def test_consent_page_offers_the_notice_for_exactly_the_campaigns_choice(org_a) -> None:
    everything = make_notice(org_a)
    attention = make_notice(org_a, derived_attributes=())
    campaign = make_campaign(org_a, derived_attributes=())
    html = Client().get(f"/c/{campaign.public_id}/").content.decode()
    assert attention.text_hash in html and everything.text_hash not in html
    assert "Estimated gender" not in html and "Emotion recognition" not in html
    # A choice no published notice names has no consent page until one is published for it.
    assert Client().get(f"/c/{make_campaign(org_a, derived_attributes=('gender',)).public_id}/").status_code == 404


def test_a_forged_purpose_alone_is_a_400_not_a_refusal(one_optional) -> None:
    from consent.models import LedgerEntry

    assert _consent(Client(), one_optional, ("mind_reading",)).status_code == 400
    assert not LedgerEntry.objects.exclude(event="shown").exists()


def test_camera_page_says_what_this_campaign_derives(org_a) -> None:
    make_notice(org_a, derived_attributes=())
    make_notice(org_a)
    for attributes, says in (((), False), (None, True)):
        campaign = make_campaign(org_a, derived_attributes=attributes)
        client = Client()
        _consent(client, campaign, ("face_analysis",))
        html = client.get(f"/c/{campaign.public_id}/capture/?lang=en").content.decode()
        statement = re.search(r'<div id="derived-statement">(.*?)</div>', html, re.S).group(1)
        assert "Gaze and attention" in statement
        assert ("Estimated gender" in statement) == says and ("Emotion recognition" in statement) == says
        assert ("Biometric categorisation" in statement) == says
