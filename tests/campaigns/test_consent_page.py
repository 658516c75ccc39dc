"""A campaign's consent page: notice in the visitor's language, unticked boxes, consent and refuse of equal
weight, CSRF, and every decision in the ledger with the notice hash that was shown."""

import re

import pytest
from django.test import Client

from consent.guards import require_consent
from consent.models import Grant, LedgerEntry, Subject
from consent.services import notice_draft_copy, notice_publish
from tests.factories import make_campaign, make_notice

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")


@pytest.fixture
def setup(org_a):
    en = make_notice(org_a, language="en", purposes=PURPOSES)
    de = make_notice(org_a, language="de", purposes=PURPOSES)
    # The camera needs face analysis; personalization is an optional extra.
    campaign = make_campaign(org_a, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    return campaign, en, de


def _url(campaign) -> str:
    return f"/c/{campaign.public_id}/"


def _post(client: Client, campaign, shown, action: str, purposes=PURPOSES, **extra):
    data = {"notice": shown.text_hash, "lang": shown.language, "action": action, "purposes": list(purposes)}
    data.update(extra)
    return client.post(_url(campaign), data)


def test_page_shows_the_english_notice_with_unticked_boxes_and_records_shown(setup) -> None:
    campaign, en, _ = setup
    response = Client().get(_url(campaign), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert en.text_hash in html and "Emotion recognition" in html
    boxes = re.findall(r'<input type="checkbox"[^>]*>', html)
    assert len(boxes) == 2 and not any("checked" in box for box in boxes)
    assert 'value="consent"' in html and 'value="refuse"' in html
    assert re.search(r'<label for="purpose-face_analysis">', html)
    shown = LedgerEntry.objects.get(event="shown")
    assert shown.context_ref == campaign.context_ref and shown.notice_hash == en.text_hash


def test_page_follows_the_browser_language_and_the_switch(setup) -> None:
    campaign, _, de = setup
    html = Client().get(_url(campaign), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="de">' in html and de.text_hash in html and "Ich willige ein" in html
    html = Client().get(_url(campaign) + "?lang=en", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="en">' in html and "I consent" in html


def test_language_without_a_notice_falls_back_to_one_that_has_it(org_a) -> None:
    en = make_notice(org_a, language="en")
    campaign = make_campaign(org_a)
    html = Client().get(_url(campaign) + "?lang=de").content.decode()
    assert en.text_hash in html and '<html lang="en">' in html


def test_refusing_is_recorded_and_creates_no_subject(setup) -> None:
    campaign, en, _ = setup
    response = _post(Client(), campaign, en, "refuse", purposes=())
    assert response.status_code == 200
    refused = LedgerEntry.objects.get(event="refused")
    assert refused.notice_hash == en.text_hash and refused.purposes == "face_analysis,personalization"
    assert refused.evidence["ip_prefix"] == "127.0.0.0/24"
    assert Subject.objects.count() == 0 and Grant.objects.count() == 0


def test_consent_records_grants_with_the_notice_hash_and_leads_to_my_data(setup) -> None:
    campaign, _, de = setup
    client = Client()
    response = _post(client, campaign, de, "consent", purposes=("face_analysis",))
    assert response.status_code == 303
    # Consent to face analysis leads to the camera page (camera off), which links "my data"
    # (tests/browser/test_capture_page.py).
    assert response["Location"].startswith(f"/c/{campaign.public_id}/capture/")
    capture_page = client.get(response["Location"]).content.decode()
    my_data_link = re.search(rf'href="(/c/{campaign.public_id}/my-data/[^"]*)"', capture_page).group(1)
    response["Location"] = client.get(my_data_link)["Location"]  # the stable link leads to the current one
    subject = Subject.objects.get()
    grant = require_consent(organization_id=subject.organization_id, subject_id=subject.pk, purpose="face_analysis")
    assert grant.notice_hash == de.text_hash and grant.language == "de" and grant.channel == "consent_page"
    assert grant.context_ref == campaign.context_ref
    assert set(grant.evidence) == {"ip_prefix", "user_agent_class"}
    events = list(LedgerEntry.objects.order_by("sequence").values_list("event", "purposes"))
    assert events == [("granted", "face_analysis"), ("refused", "personalization")]
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Meine Daten" in page.content.decode()


@pytest.mark.parametrize("ticked", [(), ("personalization",)])
def test_consent_without_a_required_purpose_ticked_is_a_refusal(setup, ticked) -> None:
    campaign, en, _ = setup
    response = _post(Client(), campaign, en, "consent", purposes=ticked)
    assert response.status_code == 200 and "You refused" in response.content.decode()
    refused = LedgerEntry.objects.get()
    assert refused.event == "refused" and refused.purposes == "face_analysis,personalization"
    assert not Subject.objects.exists() and not Grant.objects.exists()


def test_stale_or_forged_notice_hash_writes_nothing(setup) -> None:
    campaign, en, _ = setup
    stale = en
    notice_publish(notice=notice_draft_copy(notice=en))
    response = _post(Client(), campaign, stale, "consent")
    assert response.status_code == 409
    response = _post(Client(), campaign, stale, "consent", notice="0" * 64)
    assert response.status_code == 409
    assert not Grant.objects.exists() and not LedgerEntry.objects.filter(event="granted").exists()


def test_unknown_purpose_or_language_writes_nothing(setup) -> None:
    campaign, en, _ = setup
    assert _post(Client(), campaign, en, "consent", purposes=("face_analysis", "mind_reading")).status_code == 400
    assert _post(Client(), campaign, en, "consent", lang="fr").status_code == 400
    assert not Grant.objects.exists() and not LedgerEntry.objects.exists()


def test_consent_form_needs_a_csrf_token(setup) -> None:
    campaign, en, _ = setup
    client = Client(enforce_csrf_checks=True)
    assert _post(client, campaign, en, "consent").status_code == 403
    assert not Grant.objects.exists()


def _assert_plainly_unavailable(response, status: int, language: str = "en") -> None:
    html = response.content.decode()
    assert response.status_code == status
    assert f'<html lang="{language}">' in html and 'id="campaign-unavailable"' in html
    assert "Traceback" not in html and "URLconf" not in html and "Page not found" not in html
    assert "<form" not in html and "capture.js" not in html


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(("status", "expected"), [("draft", 404), ("ended", 410)])
def test_inactive_campaign_says_plainly_that_it_is_not_available(settings, org_a, status, expected, debug) -> None:
    settings.DEBUG = debug
    make_notice(org_a)
    campaign = make_campaign(org_a, status=status)
    for url in (_url(campaign), _url(campaign) + "capture/"):
        response = Client().get(url, HTTP_ACCEPT_LANGUAGE="en")
        _assert_plainly_unavailable(response, expected)
        assert "This campaign is not available right now." in response.content.decode()
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_unknown_campaign_id_says_plainly_that_it_is_not_available_in_the_visitors_language(settings, debug) -> None:
    settings.DEBUG = debug
    for url in ("/c/no-such-campaign/", "/c/no-such-campaign/capture/"):
        response = Client().get(url, HTTP_ACCEPT_LANGUAGE="de")
        _assert_plainly_unavailable(response, 404, language="de")
        assert "Diese Kampagne ist derzeit nicht verfügbar." in response.content.decode()
    opened = Client().post("/c/no-such-campaign/capture/session/")
    assert opened.status_code == 404 and opened.json()["error"]["code"] == "campaign_unavailable"


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("lacking", ["notice", "notice_for_these_purposes", "retention_policy", "retired_notice"])
def test_active_campaign_that_is_not_ready_says_plainly_that_it_is_not_available(
    settings, org_a, lacking, debug
) -> None:
    """An active campaign whose purposes have no published notice, or whose organization has no retention policy:
    the plain page (404), never Django's debug page, and nothing recorded."""
    from consent.models import RetentionPolicy
    from consent.services import notice_retire

    settings.DEBUG = debug
    if lacking == "notice_for_these_purposes":
        make_notice(org_a, purposes=("face_analysis",))  # a notice, but not for the campaign's purpose set
    elif lacking == "retention_policy":
        make_notice(org_a, purposes=PURPOSES)
        RetentionPolicy.objects.filter(organization=org_a).delete()
    elif lacking == "retired_notice":
        notice_retire(notice=make_notice(org_a, purposes=PURPOSES))
    campaign = make_campaign(org_a, purposes=PURPOSES)
    for language in ("en", "de"):
        response = Client().get(_url(campaign), HTTP_ACCEPT_LANGUAGE=language)
        _assert_plainly_unavailable(response, 404, language=language)
    posted = Client().post(_url(campaign), {"action": "consent", "purposes": list(PURPOSES), "lang": "en"})
    _assert_plainly_unavailable(posted, 404)
    assert not LedgerEntry.objects.exists() and not Subject.objects.exists()


def test_missing_language_falls_back_to_a_published_one_and_says_so_in_the_visitors_language(org_a) -> None:
    en = make_notice(org_a, language="en", purposes=PURPOSES)
    campaign = make_campaign(org_a, purposes=PURPOSES)
    response = Client().get(_url(campaign), HTTP_ACCEPT_LANGUAGE="de")
    html = response.content.decode()
    assert response.status_code == 200 and en.text_hash in html and '<html lang="en">' in html
    assert 'id="language-fallback" lang="de"' in html
    assert "Der Hinweis ist in Ihrer Sprache nicht verfügbar; er wird auf Englisch gezeigt." in html
    assert "language-fallback" not in Client().get(_url(campaign), HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_funnel_counts_a_visitor_once_per_notice_version_however_often_they_reload(setup) -> None:
    from consent.pages import VISITOR_COOKIE
    from consent.selectors import consent_funnel

    campaign, en, _ = setup
    first, second = Client(), Client()
    for _ in range(3):
        assert first.get(_url(campaign) + "?lang=en").status_code == 200
    second.get(_url(campaign) + "?lang=en")
    assert LedgerEntry.objects.filter(event="shown").count() == 4  # the ledger keeps every showing
    (row,) = consent_funnel(organization=campaign.organization)
    assert (row.notice_hash, row.shown) == (en.text_hash, 2)

    # A new notice version is shown anew to the same browser: one more for the new version, none for the old.
    newer = notice_publish(notice=notice_draft_copy(notice=en))
    first.get(_url(campaign) + "?lang=en")
    first.get(_url(campaign) + "?lang=en")
    counts = {r.notice_hash: r.shown for r in consent_funnel(organization=campaign.organization)}
    assert counts == {en.text_hash: 2, newer.text_hash: 1}

    # The cookie is an opaque, signed, HttpOnly id; the ledger holds neither it nor anything linking versions.
    cookie = first.cookies[VISITOR_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    raw_id = cookie.value.split(":")[0]
    refs = [e.payload["visitor"] for e in LedgerEntry.objects.filter(event="shown").order_by("sequence")]
    assert len(set(refs)) == 3 and all(raw_id not in ref for ref in refs)
    assert not any(raw_id in str(e.canonical_content()) for e in LedgerEntry.objects.all())


def test_funnel_in_the_admin_counts_visitors_not_page_loads(setup, marketer_a) -> None:
    campaign, en, _ = setup
    visitor = Client()
    for _ in range(3):
        visitor.get(_url(campaign) + "?lang=en")
    Client().get(_url(campaign) + "?lang=en")
    admin = Client()
    admin.force_login(marketer_a)
    response = admin.get("/admin/consent/ledgerentry/funnel/")
    ((_, rows),) = response.context["funnels"]
    assert [(r.context_ref, r.shown) for r in rows] == [(campaign.context_ref, 2)]
