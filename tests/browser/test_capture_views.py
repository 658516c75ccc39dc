"""The capture page's server side without a browser: the consent hand-off through the Django session, what the
page hands to the script (a capture token, never the "my data" token), and CORS on capture endpoints only."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from consent.services import consent_withdraw, subject_access_token_rotate
from faceanalysis.models import CaptureSession
from tests.factories import make_campaign, make_notice

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")
ORIGIN = "https://shop.example"


@pytest.fixture
def campaign(org_a):
    make_notice(org_a, language="en", purposes=PURPOSES)
    return make_campaign(org_a, purposes=PURPOSES)


def _consent(client: Client, campaign, purposes=("face_analysis",)):
    notice = re.search(r'name="notice" value="([0-9a-f]+)"', client.get(f"/c/{campaign.public_id}/").content.decode())
    return client.post(
        f"/c/{campaign.public_id}/",
        {"notice": notice.group(1), "lang": "en", "action": "consent", "purposes": list(purposes)},
    )


def _script_attrs(html: str) -> dict[str, str]:
    tag = re.search(r"<script src=\"[^\"]*visage/capture\.js\"(.*?)></script>", html, re.S).group(1)
    return dict(re.findall(r'(data-visage-[\w-]+)="([^"]*)"', tag))


def test_consent_to_face_analysis_hands_over_to_the_capture_page_with_a_capture_token_only(campaign) -> None:
    client = Client()
    response = _consent(client, campaign)
    assert response.status_code == 303 and response["Location"].startswith(f"/c/{campaign.public_id}/capture/")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store, private"
    attrs = _script_attrs(html)
    session = CaptureSession.objects.get()
    assert attrs["data-visage-session"] == str(session.public_id)
    assert attrs["data-visage-token"].startswith("vcs_") and attrs["data-visage-fps"] == "2"
    assert attrs["data-visage-max-seconds"] == "120"
    assert session.source == "browser_stream" and session.campaign == campaign
    my_data_token = re.search(r'href="/consent/my-data/([^/"]+)/', html).group(1)
    assert my_data_token not in str(attrs)  # the script never gets the "my data" token


def test_my_data_token_stays_in_the_visitors_browser_not_in_the_session_table(campaign) -> None:
    from django.contrib.sessions.models import Session

    client = Client()
    _consent(client, campaign)
    html = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    my_data_token = re.search(r'href="/consent/my-data/([^/"]+)/', html).group(1)
    stored = " ".join(str(s.get_decoded()) + s.session_data for s in Session.objects.all())
    assert stored and my_data_token not in stored
    cookie = client.cookies[f"visage_my_data_{campaign.public_id}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # A tampered cookie is worth nothing: the page still works, without the link.
    client.cookies[f"visage_my_data_{campaign.public_id}"] = cookie.value[:-2] + "xx"
    html = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    assert "/consent/my-data/" not in html and 'data-visage-token="vcs_' in html


def test_consent_page_offers_the_camera_to_a_browser_that_consented(campaign) -> None:
    client = Client()
    assert "already-consented" not in client.get(f"/c/{campaign.public_id}/").content.decode()
    _consent(client, campaign)
    html = client.get(f"/c/{campaign.public_id}/").content.decode()
    assert f'href="/c/{campaign.public_id}/capture/?lang=en"' in html
    assert "already-consented" not in Client().get(f"/c/{campaign.public_id}/").content.decode()


def test_consent_without_face_analysis_leads_to_my_data_and_the_capture_page_refuses(campaign) -> None:
    client = Client()
    response = _consent(client, campaign, purposes=("personalization",))
    assert response["Location"].startswith("/consent/my-data/")
    page = client.get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and "capture.js" not in page.content.decode()
    assert not CaptureSession.objects.exists()


def test_capture_page_refuses_after_withdrawal_and_drops_a_rotated_my_data_link(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    first = client.get(f"/c/{campaign.public_id}/capture/")
    subject = CaptureSession.objects.get().subject
    assert "/consent/my-data/" in first.content.decode()
    subject_access_token_rotate(subject=subject)
    rotated = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    assert rotated.count("/consent/my-data/") == 0  # a stale link is not shown
    consent_withdraw(organization=subject.organization, subject=subject, purposes=["face_analysis"],
                     channel="my_data_page", evidence={})
    page = client.get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and 'data-reason="withdrawn"' in page.content.decode()
    assert "capture.js" not in page.content.decode()
    assert CaptureSession.objects.count() == 2


def test_reloading_the_capture_page_ends_the_session_it_opened_before(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    first = _script_attrs(client.get(f"/c/{campaign.public_id}/capture/").content.decode())
    second = _script_attrs(client.get(f"/c/{campaign.public_id}/capture/").content.decode())
    sessions = {str(s.public_id): s for s in CaptureSession.objects.all()}
    assert sessions[first["data-visage-session"]].end_reason == "client"
    assert sessions[second["data-visage-session"]].is_open


def test_another_browser_session_gets_no_capture_session(campaign) -> None:
    _consent(Client(), campaign)
    page = Client().get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and 'data-reason="no_grant"' in page.content.decode()
    assert not CaptureSession.objects.exists()


def test_unknown_campaign_capture_page_is_404() -> None:
    assert Client().get("/c/nope/capture/").status_code == 404


def test_cors_answers_allowed_origins_on_capture_endpoints_only(settings, campaign) -> None:
    settings.VISAGE_CAPTURE_ALLOWED_ORIGINS = [ORIGIN]
    client = Client()
    _consent(client, campaign)
    attrs = _script_attrs(client.get(f"/c/{campaign.public_id}/capture/").content.decode())
    frames = f"/api/v1/capture-sessions/{attrs['data-visage-session']}/frames/"
    preflight = Client().options(
        frames, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight
    detail = Client().get(
        f"/api/v1/capture-sessions/{attrs['data-visage-session']}/", HTTP_ORIGIN=ORIGIN,
        HTTP_AUTHORIZATION=f"Bearer {attrs['data-visage-token']}",
    )
    assert detail.status_code == 200 and detail["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in detail["Vary"]

    # Another origin, or another endpoint, gets no CORS headers at all.
    other = Client().options(frames, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert "Access-Control-Allow-Origin" not in other
    for path in ("/api/v1/", "/api/v1/capture-sessions/", "/api/v1/keys/"):
        response = Client().options(path, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
        assert "Access-Control-Allow-Origin" not in response, path


def test_cors_is_off_by_default(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    attrs = _script_attrs(client.get(f"/c/{campaign.public_id}/capture/").content.decode())
    response = Client().options(
        f"/api/v1/capture-sessions/{attrs['data-visage-session']}/frames/", HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in response
