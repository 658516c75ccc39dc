"""Done when (issue 13): a partner-like page on a second local origin embeds personalize.js and capture.js from
Visage. Without consent it shows the non-biometric variant and the decision says why the face rule was skipped;
after consent on Visage's page and a few analysed frames of a smiling face, Visage.decide() puts the "smile"
variant in the slot, whose impression and click arrive once each, attributed to that variant and rule; after
withdrawal on the "my data" page the next decision falls back to the non-biometric rule.

Visage (the live server) and the partner page are both on `localhost`, on two ports: two origins, one site, so the
browser sends Visage's SameSite=Lax cookies with the snippets' credentialed requests."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from campaigns.models import Decision, Event, Rule, Variant
from faceanalysis.models import CaptureSession
from tests.browser_support import LIVE_TRACKS, open_counting_page, screenshot
from tests.factories import make_campaign, make_notice, make_organization

pytestmark = [pytest.mark.browser]

PURPOSES = ("face_analysis", "personalization")

PARTNER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Partner shop</title>
<style>[data-visage-slot]{{visibility:hidden}}</style>
<script src="{api}/static/visage/personalize.js" data-visage-campaign="{campaign}" data-visage-timeout="8000"></script>
</head><body>
<section data-visage-slot="hero" id="hero">
  <h2 data-visage-field="headline">Welcome to our shop</h2>
  <p data-visage-field="body">Everything for everyone.</p>
  <a data-visage-field="cta" href="{partner}/thanks.html">Shop now</a>
</section>
<div id="camera"></div>
<script src="{api}/static/visage/capture.js" data-visage-campaign="{campaign}" data-visage-target="#camera"
  data-visage-fps="2"></script>
</body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def partner_site(live_server, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static file server on the live server's host name and another port: same site, another origin."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = urlsplit(live_server.url).hostname
    yield f"http://{host}:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def _personalized_campaign(partner_origin: str):
    """A running campaign for the partner's origin: variants default / smile / calm; rule 1 "smilers" on
    face.smile_share, rule 2 "English readers" on the request's language (no face needed)."""
    organization = make_organization(name="Smile Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    campaign.allowed_origins = partner_origin
    campaign.save()

    def variant(key: str, headline: str, **extra: object) -> Variant:
        return Variant.objects.create(
            organization=organization, campaign=campaign, key=key, name=key.title(), headline=headline,
            body=f"The {key} body.", cta_text=f"{key.title()} offer", cta_url=f"{partner_origin}/thanks.html",
            **extra,
        )

    variant("default", "Welcome to our shop", is_default=True)
    smile = variant("smile", "Your smile earns a playful offer")
    calm = variant("calm", "Take it <em>easy</em>: our calm offer")
    face_leaf = {"field": "face.smile_share", "op": "gte", "value": 0.3, "min_confidence": 0.5,
                 "window_seconds": 900, "min_frames": 3}
    smilers = Rule.objects.create(organization=organization, campaign=campaign, name="Smilers", priority=10,
                                  condition={"all": [face_leaf]}, variant=smile)
    readers = Rule.objects.create(organization=organization, campaign=campaign, name="English readers", priority=20,
                                  condition={"field": "request.language", "op": "eq", "value": "en"}, variant=calm)
    return campaign, smilers, readers


@pytest.mark.slow
def test_partner_page_switches_to_the_smile_variant_after_consent_and_back_after_withdrawal(
    live_server, ledger_flushable, eager, clean_frame_store, warm_engine, face_video, partner_site, settings
) -> None:
    origin, root = partner_site
    settings.VISAGE_CAPTURE_ALLOWED_ORIGINS = [origin]  # the frames endpoints' own CORS list
    campaign, smilers, readers = _personalized_campaign(origin)
    (root / "index.html").write_text(
        PARTNER_PAGE.format(api=live_server.url, campaign=campaign.public_id, partner=origin), encoding="utf-8"
    )
    (root / "thanks.html").write_text("<!DOCTYPE html><title>Thanks</title><h1>Thanks</h1>", encoding="utf-8")
    errors: list[str] = []
    seen: dict[str, object] = {}
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=face_video)
        page.on("pageerror", lambda error: errors.append(str(error)))
        hero = page.locator("#hero")
        headline = page.locator("#hero [data-visage-field=headline]")

        # 1. No consent: the non-biometric rule's variant, and the answer says why the face rule was skipped.
        page.goto(f"{origin}/index.html")
        expect(hero).to_have_attribute("data-visage-state", "decided")
        expect(hero).to_have_attribute("data-visage-variant", "calm")
        assert headline.inner_text() == "Take it <em>easy</em>: our calm offer"  # text, never HTML
        seen["anonymous"] = page.evaluate("Visage.decision")
        expect(page.locator("#camera .visage-capture")).to_have_attribute("data-state", "idle")
        assert page.evaluate("window.__gumCalls") == 0
        page.wait_for_timeout(1500)  # seen for a second: its impression

        # 2. Consent on Visage's page to face analysis and personalization.
        page.goto(f"{live_server.url}/c/{campaign.public_id}/?lang=en")
        page.get_by_label("Face analysis").check()
        page.get_by_label("Personalization from face features").check()
        page.get_by_role("button", name="I consent").click()
        page.wait_for_url(f"**/c/{campaign.public_id}/capture/**")

        # 3. Back on the partner page: the camera starts only on "Start camera"; frames of a smile are analysed.
        page.goto(f"{origin}/index.html")
        expect(hero).to_have_attribute("data-visage-variant", "calm")
        seen["consented_no_frames"] = page.evaluate("Visage.decision")
        assert page.evaluate("window.__gumCalls") == 0
        widget = page.locator("#camera .visage-capture")
        page.get_by_role("button", name="Start camera").click()
        expect(widget).to_have_attribute("data-state", "recording")
        page.wait_for_function(
            "Number(document.querySelector('[data-field=frames_analyzed]').dataset.value || 0) >= 3",
            timeout=120_000,
        )
        seen["smile"] = page.evaluate("Visage.decide()")
        expect(hero).to_have_attribute("data-visage-variant", "smile")
        assert headline.inner_text() == "Your smile earns a playful offer"
        screenshot(page, "personalize-smile")
        page.wait_for_timeout(1500)  # its impression
        page.locator("#hero [data-visage-field=cta]").click()
        page.wait_for_url(f"{origin}/thanks.html")
        assert page.evaluate(LIVE_TRACKS) == 0  # leaving the page stopped the camera
        page.wait_for_timeout(1000)  # the click's keepalive post

        # 4. Withdraw everything on the "my data" page; the next decision is the non-biometric rule's again.
        page.goto(f"{live_server.url}/c/{campaign.public_id}/my-data/?lang=en")
        page.get_by_role("button", name="Withdraw everything").click()
        expect(page.locator("td[data-state=withdrawn]")).to_have_count(2)
        page.goto(f"{origin}/index.html")
        expect(hero).to_have_attribute("data-visage-variant", "calm")
        seen["withdrawn"] = page.evaluate("Visage.decide()")
        expect(hero).to_have_attribute("data-visage-variant", "calm")
        browser.close()

    assert errors == []
    anonymous = seen["anonymous"]
    assert anonymous["reason"] == {"kind": "rule", "rule": readers.pk, "experiment": None, "experiment_arm": None}
    assert anonymous["skipped"] == [{"rule": smilers.pk, "reason": "no_subject"}]
    assert seen["consented_no_frames"]["skipped"] == [{"rule": smilers.pk, "reason": "no_fresh_features"}]
    smile = seen["smile"]
    assert smile["variant"]["key"] == "smile" and smile["reason"]["rule"] == smilers.pk and smile["skipped"] == []
    withdrawn = seen["withdrawn"]
    assert withdrawn["variant"]["key"] == "calm" and withdrawn["reason"]["rule"] == readers.pk
    assert withdrawn["skipped"] == [{"rule": smilers.pk, "reason": "no_face_analysis_consent"}]

    session = CaptureSession.objects.get(campaign_id=campaign.pk)
    assert session.media_ref == "partner-page" and session.subject is not None
    decision = Decision.objects.get(public_id=smile["decision_id"])
    # The face rule fired, so the cookie named the subject; the withdrawal's purge has since cut the log's reference.
    assert decision.subject_id is None and decision.variant.key == "smile"
    assert decision.rule_id == smilers.pk and decision.channel == "snippet"
    events = Event.objects.filter(decision=decision)
    assert sorted(events.values_list("kind", flat=True)) == ["click", "impression"]  # once each
    assert {(e.variant_id, e.rule_id, e.name) for e in events} == {(decision.variant_id, smilers.pk, "hero")}
    first = Decision.objects.get(public_id=anonymous["decision_id"])
    assert first.subject_id is None and first.visitor_id == decision.visitor_id  # one first-party visitor id
    assert list(Event.objects.filter(decision=first).values_list("kind", flat=True)) == ["impression"]
