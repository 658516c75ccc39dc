"""The capture page's server side without a browser: the consent hand-off through the Django session, a page
that opens nothing until the visitor starts the camera, what the script then gets (a capture token, never the
"my data" token), and CORS on capture endpoints only."""

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
    return make_campaign(org_a, purposes=PURPOSES[:1], optional=PURPOSES[1:])  # personalization: an extra


def _consent(client: Client, campaign, purposes=("face_analysis",)):
    notice = re.search(r'name="notice" value="([0-9a-f]+)"', client.get(f"/c/{campaign.public_id}/").content.decode())
    return client.post(
        f"/c/{campaign.public_id}/",
        {"notice": notice.group(1), "lang": "en", "action": "consent", "purposes": list(purposes)},
    )


def _script_attrs(html: str) -> dict[str, str]:
    tag = re.search(r"<script src=\"[^\"]*visage/capture\.js\"(.*?)></script>", html, re.S).group(1)
    return dict(re.findall(r'(data-visage-[\w-]+)="([^"]*)"', tag))


def _my_data_token(client: Client, campaign, html: str) -> str:
    """The "my data" token behind the capture page's stable "my data" link (which redirects to the current one)."""
    link = re.search(rf'href="(/c/{campaign.public_id}/my-data/)[^"]*"', html).group(1)
    return re.match(r"/consent/my-data/([^/]+)/", client.get(link)["Location"]).group(1)


def _start(client: Client, campaign) -> dict:
    """What "Start camera" does: POST to the page's start URL; the JSON answer with its status."""
    response = client.post(f"/c/{campaign.public_id}/capture/session/")
    return {"status": response.status_code, **response.json()}


def test_consent_hands_over_to_a_capture_page_that_opens_a_session_only_when_the_camera_starts(campaign) -> None:
    client = Client()
    response = _consent(client, campaign)
    assert response.status_code == 303 and response["Location"].startswith(f"/c/{campaign.public_id}/capture/")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store, private"
    attrs = _script_attrs(html)
    assert attrs["data-visage-start-url"] == f"/c/{campaign.public_id}/capture/session/"
    assert "data-visage-token" not in attrs and attrs["data-visage-fps"] == "2"
    assert attrs["data-visage-max-seconds"] == "120"
    assert not CaptureSession.objects.exists()  # loading (or prefetching) the page opens nothing

    started = client.post(attrs["data-visage-start-url"])
    assert started.status_code == 201 and started["Cache-Control"] == "no-store, private"
    body = started.json()
    session = CaptureSession.objects.get()
    assert body["session"] == str(session.public_id) and body["capture_token"].startswith("vcs_")
    assert session.source == "browser_stream" and session.campaign == campaign
    my_data_token = _my_data_token(client, campaign, html)
    assert my_data_token not in html  # the page links a stable URL, never the token itself
    assert my_data_token not in str(attrs) + started.content.decode()  # the script never gets the "my data" token


def test_starting_the_camera_needs_the_pages_csrf_token_and_a_post(campaign) -> None:
    consented = Client()
    _consent(consented, campaign)
    client = Client(enforce_csrf_checks=True)
    client.cookies = consented.cookies  # the same browser, now held to CSRF
    attrs = _script_attrs(client.get(f"/c/{campaign.public_id}/capture/").content.decode())
    assert client.get(attrs["data-visage-start-url"]).status_code == 405
    assert client.post(attrs["data-visage-start-url"]).status_code == 403  # CSRF
    assert not CaptureSession.objects.exists()
    started = client.post(attrs["data-visage-start-url"], HTTP_X_CSRFTOKEN=attrs["data-visage-csrf"])
    assert started.status_code == 201 and CaptureSession.objects.count() == 1


def test_my_data_token_stays_in_the_visitors_browser_not_in_the_session_table(campaign) -> None:
    from django.contrib.sessions.models import Session

    client = Client()
    _consent(client, campaign)
    html = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    my_data_token = _my_data_token(client, campaign, html)
    stored = " ".join(str(s.get_decoded()) + s.session_data for s in Session.objects.all())
    assert stored and my_data_token not in stored
    cookie = client.cookies[f"visage_my_data_{campaign.public_id}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # A tampered cookie is worth nothing: the page still works, without the link.
    client.cookies[f"visage_my_data_{campaign.public_id}"] = cookie.value[:-2] + "xx"
    html = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    assert f"/c/{campaign.public_id}/my-data/" not in html and "data-visage-start-url=" in html
    assert client.get(f"/c/{campaign.public_id}/my-data/").status_code == 404


def test_consent_page_offers_the_camera_to_a_browser_that_consented(campaign) -> None:
    client = Client()
    assert "already-consented" not in client.get(f"/c/{campaign.public_id}/").content.decode()
    _consent(client, campaign)
    html = client.get(f"/c/{campaign.public_id}/").content.decode()
    assert f'href="/c/{campaign.public_id}/capture/?lang=en"' in html
    assert "already-consented" not in Client().get(f"/c/{campaign.public_id}/").content.decode()


def test_consent_without_face_analysis_leads_to_my_data_and_the_capture_page_refuses(campaign) -> None:
    campaign = make_campaign(campaign.organization, purposes=PURPOSES)  # both needed for the camera
    client = Client()
    response = _consent(client, campaign, purposes=("personalization",))
    assert response["Location"].startswith("/consent/my-data/")
    page = client.get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and "capture.js" not in page.content.decode()
    refused = _start(client, campaign)
    assert refused["status"] == 403 and refused["error"]["code"] == "consent_required"
    assert refused["error"]["details"]["reason"] == "no_grant"
    assert not CaptureSession.objects.exists()


def test_capture_page_refuses_after_withdrawal_and_drops_a_rotated_my_data_link(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    first = client.get(f"/c/{campaign.public_id}/capture/")
    assert _start(client, campaign)["status"] == 201
    subject = CaptureSession.objects.get().subject
    assert f"/c/{campaign.public_id}/my-data/" in first.content.decode()
    subject_access_token_rotate(subject=subject)  # replaced elsewhere: this browser's token is stale
    rotated = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    assert f"/c/{campaign.public_id}/my-data/" not in rotated  # a link that would lead nowhere is not shown
    assert "the one you bookmarked" in rotated
    consent_withdraw(organization=subject.organization, subject=subject, purposes=["face_analysis"],
                     channel="my_data_page", evidence={})
    page = client.get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and 'data-reason="withdrawn"' in page.content.decode()
    assert "capture.js" not in page.content.decode()
    refused = _start(client, campaign)  # a page still open from before gets no new session either
    assert refused["status"] == 403 and refused["error"]["details"]["reason"] == "withdrawn"
    assert CaptureSession.objects.count() == 1


def test_starting_the_camera_again_ends_the_session_the_page_opened_before(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    first, second = _start(client, campaign), _start(client, campaign)
    sessions = {str(s.public_id): s for s in CaptureSession.objects.all()}
    assert sessions[first["session"]].end_reason == "client"
    assert sessions[second["session"]].is_open


def test_an_ended_campaign_offers_no_camera(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    campaign.status = campaign.Status.ENDED
    campaign.save(update_fields=["status"])
    assert client.get(f"/c/{campaign.public_id}/capture/").status_code == 410  # gone, said plainly
    assert client.post(f"/c/{campaign.public_id}/capture/session/").status_code == 410
    assert not CaptureSession.objects.exists()


def test_another_browser_session_gets_no_capture_session(campaign) -> None:
    _consent(Client(), campaign)
    page = Client().get(f"/c/{campaign.public_id}/capture/")
    assert page.status_code == 403 and 'data-reason="no_grant"' in page.content.decode()
    assert _start(Client(), campaign)["status"] == 403
    assert not CaptureSession.objects.exists()


def test_unknown_campaign_capture_page_is_404() -> None:
    assert Client().get("/c/nope/capture/").status_code == 404


def test_cors_answers_allowed_origins_on_capture_endpoints_only(settings, campaign) -> None:
    settings.VISAGE_CAPTURE_ALLOWED_ORIGINS = [ORIGIN]
    client = Client()
    _consent(client, campaign)
    started = _start(client, campaign)
    frames = f"/api/v1/capture-sessions/{started['session']}/frames/"
    preflight = Client().options(
        frames, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight
    detail = Client().get(
        f"/api/v1/capture-sessions/{started['session']}/", HTTP_ORIGIN=ORIGIN,
        HTTP_AUTHORIZATION=f"Bearer {started['capture_token']}",
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
    started = _start(client, campaign)
    response = Client().options(
        f"/api/v1/capture-sessions/{started['session']}/frames/", HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert "Access-Control-Allow-Origin" not in response


def test_replacing_the_link_in_this_browser_keeps_the_capture_pages_my_data_link_working(campaign) -> None:
    """"Replace my link" on the "my data" page: the old link says it was replaced, and the capture page's link
    (also one already rendered in an open tab) leads to the new one."""
    client = Client()
    _consent(client, campaign)
    page = client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    link = re.search(rf'href="(/c/{campaign.public_id}/my-data/)[^"]*"', page).group(1)
    old = client.get(link)["Location"].split("?")[0]
    rotated = client.post(old + "rotate/", {"lang": "en"})
    new = rotated["Location"].split("?")[0]
    assert rotated.status_code == 303 and new != old
    assert client.get(old).status_code == 410
    followed = client.get(link)  # the link rendered before the rotation
    assert followed.status_code == 303 and followed["Location"].split("?")[0] == new
    assert client.get(followed["Location"]).status_code == 200
    assert link in client.get(f"/c/{campaign.public_id}/capture/").content.decode()
    # Another browser (no cookie of this visitor) gets nothing from the stable link.
    assert Client().get(link).status_code == 404


def test_consent_state_follows_a_withdrawal_for_the_open_capture_page(campaign) -> None:
    client = Client()
    _consent(client, campaign)
    url = f"/c/{campaign.public_id}/capture/consent/"
    page = client.get(f"/c/{campaign.public_id}/capture/?welcome=1").content.decode()
    assert f'data-consent-state-url="{url}"' in page and 'id="consent-recorded"' in page
    state = client.get(url)
    assert state.json() == {"state": "active"} and "no-store" in state["Cache-Control"]
    assert Client().get(url).json() == {"state": "no_grant"}  # another browser learns nothing of this one
    from consent.models import Subject

    subject = Subject.objects.get()
    consent_withdraw(organization=subject.organization, subject=subject, purposes=["face_analysis"],
                     channel="my_data_page", evidence={})
    assert client.get(url).json() == {"state": "withdrawn"}
    assert client.post(url).status_code == 405
    assert Client().get("/c/no-such-campaign/capture/consent/").status_code == 404
