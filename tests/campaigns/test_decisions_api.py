"""The decision and event endpoints: the partner's (key, decide scope) and the snippet's (no key, CORS for the
campaign's origins with credentials, the consent page's cookie the only way to a subject); strict bodies, the same
404 for unknown and foreign, 409 for campaigns that do not run, never a 5xx."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from campaigns.models import Campaign, Decision, Event
from campaigns.services import capture_session_open
from consent.models import Subject
from consent.pages import access_cookie_set
from tests.config.test_openapi import assert_documented
from tests.conftest import api_client
from tests.factories import make_api_key, make_campaign, make_notice, make_rule, make_subject, make_variant
from tests.purges import make_face_data

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example"
VISITOR = "visitor-0123456789abcdef"
SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}
PURPOSES = ("face_analysis", "personalization")


@pytest.fixture
def campaign(org_a) -> Campaign:
    notice = make_notice(org_a, purposes=PURPOSES)
    campaign = make_campaign(org_a, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    campaign.allowed_origins = f"{ORIGIN}\nhttps://other.example\n"
    campaign.save()
    campaign.notice = notice
    make_variant(campaign, key="standard", default=True, headline="Hello")
    smile = make_variant(campaign, key="smile", headline="Smile!", cta_url="https://shop.example/buy")
    make_rule(campaign, smile, SMILE, priority=1, name="smilers")
    make_rule(campaign, make_variant(campaign, key="germany"),
              {"field": "request.country", "op": "eq", "value": "DE"}, priority=2)
    return campaign


def consent_on_the_page(client: Client, campaign: Campaign) -> Subject:
    """The visitor consents on the campaign's consent page (which sets its cookie in `client`), and smiles."""
    response = client.post(f"/c/{campaign.public_id}/", {
        "notice": campaign.notice.text_hash, "lang": "en", "action": "consent", "purposes": list(PURPOSES),
    })
    assert response.status_code == 303
    subject = Subject.objects.get()
    session, _ = capture_session_open(organization=campaign.organization, subject=subject, campaign=campaign,
                                      source="browser_stream")
    make_face_data(session, frames=3, smile=0.9)
    return subject


def post(client: Client, url: str, body, **headers):
    return client.post(url, json.dumps(body) if not isinstance(body, str) else body,
                       content_type="application/json", **headers)


def public_decide(client: Client, campaign: Campaign, *, origin: str | None = ORIGIN, **extra):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    body = {"campaign": campaign.public_id, "visitor_id": VISITOR, "context": {"language": "en"}, **extra}
    return post(client, "/api/v1/public/decisions/", body, **headers)


# --- The partner's server -------------------------------------------------------------------------------------------


def test_the_partner_gets_a_documented_decision(client_a, campaign) -> None:
    response = client_a.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR,
                                                    "context": {"country": "DE"}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["variant"]["key"] == "germany" and body["reason"]["kind"] == "rule"
    assert body["skipped"] == [{"rule": campaign.rules.get(name="smilers").pk, "reason": "no_subject"}]
    assert body["cache_ttl_seconds"] == 60 and body["campaign"] == campaign.public_id
    assert set(body["variant"]["content"]) == {"headline", "body", "image_url", "cta_text", "cta_url", "payload",
                                               "html"}
    assert Decision.objects.get(public_id=body["decision_id"]).channel == "api"
    assert_documented("/api/v1/decisions/", "post", response)


def test_the_partner_names_a_consented_subject_and_its_face_rule_fires(client_a, campaign) -> None:
    subject = consent_on_the_page(Client(), campaign)
    response = client_a.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR,
                                                    "subject": str(subject.public_id)}, format="json")
    assert response.json()["variant"]["key"] == "smile"


def test_unknown_and_foreign_campaigns_and_subjects_are_the_same_404(client_a, campaign, org_b) -> None:
    foreign = make_campaign(org_b)
    answers = [
        client_a.post("/api/v1/decisions/", {"campaign": public_id, "visitor_id": VISITOR}, format="json")
        for public_id in ("no-such-campaign", foreign.public_id)
    ]
    answers.append(client_a.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR,
                                                        "subject": str(make_subject(org_b).public_id)},
                                 format="json"))
    assert {(r.status_code, r.json()["error"]["message"]) for r in answers} == {(404, "No such campaign.")}


@pytest.mark.parametrize(("status", "code"), [("paused", "campaign_not_running"), ("ended", "campaign_ended")])
def test_a_paused_or_ended_campaign_answers_409(client_a, campaign, status: str, code: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    response = client_a.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR},
                             format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, code)
    assert_documented("/api/v1/decisions/", "post", response)


@pytest.mark.parametrize(("scopes", "allowed"), [(("read",), False), (("decide",), True), (("write",), True)])
def test_deciding_needs_the_decide_scope_which_write_implies(org_a, campaign, scopes, allowed: bool) -> None:
    client = api_client(make_api_key(org_a, scopes=scopes)[1])
    response = client.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR},
                           format="json")
    assert response.status_code == (200 if allowed else 403)
    decide_only = api_client(make_api_key(org_a, scopes=("decide",))[1])
    assert decide_only.post("/api/v1/consent/subjects/", {"partner_user_id": "u1"}, format="json").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"campaign": "x", "visitor_id": "short"},
        {"campaign": "x", "visitor_id": "has spaces in it 0123"},
        {"campaign": "x", "visitor_id": 1234567890123456789},
        {"campaign": 5, "visitor_id": VISITOR},
        {"campaign": "x", "visitor_id": VISITOR, "unknown": 1},
        {"campaign": "x", "visitor_id": VISITOR, "context": {"nope": "x"}},
        {"campaign": "x", "visitor_id": VISITOR, "context": "de"},
        {"campaign": "x", "visitor_id": VISITOR, "subject": "not-a-uuid"},
        [],
    ],
)
def test_a_bad_decision_body_is_400(client_a, body) -> None:
    response = client_a.post("/api/v1/decisions/", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_a_form_body_is_415(client_a) -> None:
    assert client_a.post("/api/v1/decisions/", {"campaign": "x"}).status_code == 415


def test_partner_events_are_recorded_once_and_documented(client_a, campaign) -> None:
    decided = client_a.post("/api/v1/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR},
                            format="json").json()
    body = {"decision": decided["decision_id"], "client_event_id": "e-1", "kind": "conversion", "name": "purchase",
            "value": 49.9, "currency": "EUR"}
    first = client_a.post("/api/v1/events/", body, format="json")
    again = client_a.post("/api/v1/events/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    assert first.json()["variant"] == "standard" and first.json()["value"] == 49.9
    assert_documented("/api/v1/events/", "post", first)
    assert_documented("/api/v1/events/", "post", again)
    assert Event.objects.count() == 1
    for bad in ({**body, "value": "49.90"}, {**body, "currency": "eur"}, {**body, "kind": "view"},
                {**body, "decision": "nope"}, {**body, "extra": True}):
        assert client_a.post("/api/v1/events/", bad, format="json").status_code == 400


# --- The snippet -------------------------------------------------------------------------------------------------


def test_an_allowed_origin_gets_cors_with_credentials(campaign) -> None:
    response = public_decide(Client(), campaign)
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]
    assert Decision.objects.get().channel == "snippet"
    assert_documented("/api/v1/public/decisions/", "post", response)


def test_a_refused_origin_is_403_and_nothing_is_decided(campaign) -> None:
    response = public_decide(Client(), campaign, origin="https://evil.example")
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert not Decision.objects.exists()
    lookalike = public_decide(Client(), campaign, origin="https://shop.example.evil.example")
    assert lookalike.status_code == 403


def test_a_preflight_is_answered_for_allowed_origins_only(campaign) -> None:
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "content-type"}
    for url in ("/api/v1/public/decisions/", "/api/v1/public/events/"):
        allowed = Client().options(url, HTTP_ORIGIN=ORIGIN, **preflight)
        assert allowed.status_code == 204
        assert allowed["Access-Control-Allow-Origin"] == ORIGIN
        assert allowed["Access-Control-Allow-Credentials"] == "true"
        assert "Content-Type" in allowed["Access-Control-Allow-Headers"]
        assert int(allowed["Access-Control-Max-Age"]) > 0
        refused = Client().options(url, HTTP_ORIGIN="https://evil.example", **preflight)
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused


def test_no_origin_header_is_a_server_or_same_origin_call_without_cors(campaign) -> None:
    response = public_decide(Client(), campaign, origin=None)
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response


def test_the_consent_pages_cookie_recognises_the_subject_and_nothing_else_does(campaign) -> None:
    browser = Client()
    subject = consent_on_the_page(browser, campaign)
    recognised = public_decide(browser, campaign)
    assert recognised.json()["variant"]["key"] == "smile"
    assert Decision.objects.get(public_id=recognised.json()["decision_id"]).subject == subject
    stranger = public_decide(Client(), campaign)
    assert stranger.json()["variant"]["key"] == "standard"
    assert stranger.json()["skipped"][0]["reason"] == "no_subject"
    named_in_body = public_decide(Client(), campaign, subject=str(subject.public_id))
    assert named_in_body.status_code == 400  # the snippet never names a subject


def test_a_cookie_of_another_organizations_subject_is_not_recognised(campaign, org_b) -> None:
    from consent.services import subject_access_token_rotate

    foreign = make_subject(org_b)
    token = subject_access_token_rotate(subject=foreign)
    carrier = Client()
    response = carrier.get("/healthz")
    access_cookie_set(response, key=campaign.public_id, token=token)
    carrier.cookies.update(response.cookies)
    answer = public_decide(carrier, campaign)
    assert answer.status_code == 200 and answer.json()["skipped"][0]["reason"] == "no_subject"
    assert Decision.objects.get().subject is None


def test_the_country_comes_from_the_proxy_header_and_the_device_from_the_user_agent(campaign) -> None:
    response = post(
        Client(), "/api/v1/public/decisions/", {"campaign": campaign.public_id, "visitor_id": VISITOR},
        HTTP_ORIGIN=ORIGIN, HTTP_CF_IPCOUNTRY="DE", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile",
    )
    assert response.json()["variant"]["key"] == "germany"
    assert Decision.objects.get().attributes == {"device": "mobile", "language": "", "country": "DE"}
    in_body = public_decide(Client(), campaign, context={"country": "DE"})
    assert in_body.status_code == 400  # the snippet's country is the proxy's word, not the page's


def test_snippet_events_need_the_decisions_visitor_and_an_allowed_origin(campaign) -> None:
    decided = public_decide(Client(), campaign).json()
    body = {"decision": decided["decision_id"], "visitor_id": VISITOR, "client_event_id": "imp-1",
            "kind": "impression"}
    first = post(Client(), "/api/v1/public/events/", body, HTTP_ORIGIN=ORIGIN)
    again = post(Client(), "/api/v1/public/events/", body, HTTP_ORIGIN=ORIGIN)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first["Access-Control-Allow-Origin"] == ORIGIN
    assert_documented("/api/v1/public/events/", "post", first)
    other = post(Client(), "/api/v1/public/events/", {**body, "visitor_id": "another-visitor-12345678"},
                 HTTP_ORIGIN=ORIGIN)
    assert other.status_code == 404
    refused = post(Client(), "/api/v1/public/events/", {**body, "client_event_id": "imp-2"},
                   HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    assert Event.objects.count() == 1


def test_a_snippet_decision_for_a_paused_campaign_is_409_and_readable_by_the_page(campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status="paused")
    response = public_decide(Client(), campaign)
    assert response.status_code == 409 and response["Access-Control-Allow-Origin"] == ORIGIN
    unknown = post(Client(), "/api/v1/public/decisions/", {"campaign": "unknown", "visitor_id": VISITOR},
                   HTTP_ORIGIN=ORIGIN)
    assert (unknown.status_code, unknown.json()["error"]["message"]) == (404, "No such campaign.")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
_keys = st.sampled_from(["campaign", "visitor_id", "subject", "context", "decision", "client_event_id", "kind",
                         "name", "value", "currency", "occurred_at"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json | st.dictionaries(_keys, _json, max_size=8),
       url=st.sampled_from(["/api/v1/decisions/", "/api/v1/events/", "/api/v1/public/decisions/",
                            "/api/v1/public/events/"]))
def test_random_json_bodies_never_give_a_server_error(campaign, key_a, body, url: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_a}", HTTP_ORIGIN=ORIGIN)
    if isinstance(body, dict) and "campaign" in body and isinstance(body["campaign"], str):
        body["campaign"] = campaign.public_id
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (url, body, response.content)
