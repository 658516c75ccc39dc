"""POST /api/v1/public/capture-sessions/: capture.js on a partner's page opens a session for the visitor Visage's
own signed cookie names, only for an Origin the campaign allows (CORS with credentials, preflight)."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client

from campaigns.api.cors import cors_origin_allowed
from consent.pages import access_cookie_set
from consent.services import consent_withdraw, subject_access_token_rotate
from faceanalysis.models import CaptureSession
from tests.factories import make_campaign, make_grant, make_notice, make_organization, make_subject

pytestmark = pytest.mark.django_db

URL = "/api/v1/public/capture-sessions/"
PARTNER = "http://shop.example"


def _campaign(organization=None, *, origins: str = PARTNER, status: str = "running"):
    organization = organization or make_organization(name="Snippet")
    campaign = make_campaign(organization, purposes=("face_analysis",), status=status)
    campaign.allowed_origins = origins
    campaign.save()
    return campaign


def _consented_client(campaign, *, grant: bool = True) -> tuple[Client, object]:
    """A browser holding the "my data" cookie the consent page sets, for a subject of the campaign's organization."""
    subject = make_subject(campaign.organization)
    if grant:
        make_grant(subject, make_notice(campaign.organization, purposes=("face_analysis",)))
    token = subject_access_token_rotate(subject=subject)
    carrier = HttpResponse()
    access_cookie_set(carrier, key=campaign.public_id, token=token)
    client = Client()
    client.cookies.update(carrier.cookies)
    return client, subject


def _post(client: Client, campaign_id: str, *, origin: str | None = PARTNER):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.post(URL, {"campaign": campaign_id}, content_type="application/json", **headers)


def test_consented_visitor_on_an_allowed_origin_gets_a_session_and_credentialed_cors() -> None:
    campaign = _campaign()
    client, subject = _consented_client(campaign)
    response = _post(client, campaign.public_id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["capture_token"].startswith("vcs_")
    session = CaptureSession.objects.get(public_id=body["session"])
    assert session.subject_id == subject.pk and session.campaign_id == campaign.pk
    assert response["Access-Control-Allow-Origin"] == PARTNER
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]


def test_another_origin_or_none_is_refused_before_anything_opens() -> None:
    campaign = _campaign()
    client, _ = _consented_client(campaign)
    for origin in ("http://evil.example", None, "null"):
        response = _post(client, campaign.public_id, origin=origin)
        assert response.status_code == 403, (origin, response.content)
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response
    assert not CaptureSession.objects.exists()


def test_no_cookie_a_tampered_one_or_another_organizations_is_401() -> None:
    campaign = _campaign()
    response = _post(Client(), campaign.public_id)
    assert response.status_code == 401 and response["Access-Control-Allow-Origin"] == PARTNER
    assert response.json()["error"]["details"]["reason"] == "no_grant"

    client, _ = _consented_client(campaign)
    name = f"visage_my_data_{campaign.public_id}"
    client.cookies[name] = client.cookies[name].value[:-2] + "xx"
    assert _post(client, campaign.public_id).status_code == 401

    # A cookie of another organization's subject, under this campaign's name, names no one here.
    other = _campaign()
    foreign, _ = _consented_client(other)
    carrier = HttpResponse()
    access_cookie_set(carrier, key=campaign.public_id, token=subject_access_token_rotate(subject=make_subject(
        other.organization)))
    foreign.cookies.update(carrier.cookies)
    assert _post(foreign, campaign.public_id).status_code == 401
    assert not CaptureSession.objects.exists()


def test_withdrawn_or_missing_consent_is_the_guards_403() -> None:
    campaign = _campaign()
    client, subject = _consented_client(campaign)
    consent_withdraw(organization=campaign.organization, subject=subject, channel="my_data_page")
    response = _post(client, campaign.public_id)
    assert response.status_code == 403 and response.json()["error"]["code"] == "consent_required"
    assert response.json()["error"]["details"]["reason"] == "withdrawn"
    never, _ = _consented_client(campaign, grant=False)
    assert _post(never, campaign.public_id).status_code == 403
    assert not CaptureSession.objects.exists()


def test_unknown_paused_or_ended_campaign_is_a_clear_4xx() -> None:
    assert _post(Client(), "nope").status_code == 404
    assert _post(Client(), "x" * 40).status_code == 400
    paused = _campaign(status="paused")
    client, _ = _consented_client(paused)
    response = _post(client, paused.public_id)
    assert response.status_code == 409 and response.json()["error"]["code"] == "campaign_not_running"
    ended = _campaign(status="ended")
    client, _ = _consented_client(ended)
    assert _post(client, ended.public_id).json()["error"]["code"] == "campaign_ended"
    response = Client().post(URL, "{", content_type="application/json", HTTP_ORIGIN=PARTNER)
    assert response.status_code == 400


def test_preflight_is_answered_only_for_an_origin_a_campaign_that_has_not_ended_lists() -> None:
    _campaign(origins=f"https://other.example\n{PARTNER}/\n")
    _campaign(origins="http://ended.example", status="ended")
    ok = Client().options(URL, HTTP_ORIGIN=PARTNER, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert ok.status_code == 204
    assert ok["Access-Control-Allow-Origin"] == PARTNER and ok["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in ok["Access-Control-Allow-Methods"] and "Content-Type" in ok["Access-Control-Allow-Headers"]
    for origin in ("http://ended.example", "http://shop.example.evil", "http://evil.example"):
        refused = Client().options(URL, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused, origin


def test_cors_origin_allowed_matches_exact_origins_only(rf) -> None:
    campaign = _campaign(origins="https://shop.example\nhttp://localhost:8001/")
    assert cors_origin_allowed(rf.post("/", HTTP_ORIGIN="https://shop.example"), campaign) == "https://shop.example"
    assert cors_origin_allowed(rf.post("/", HTTP_ORIGIN="http://localhost:8001"), campaign) == "http://localhost:8001"
    for origin in ("http://shop.example", "https://shop.example:444", "https://sub.shop.example", ""):
        assert cors_origin_allowed(rf.post("/", HTTP_ORIGIN=origin), campaign) is None
