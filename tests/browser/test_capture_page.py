"""The end user's capture page in headless Chromium with a fake camera playing a real face: consent, stream,
see the real engine's aggregates on the page, withdraw in another tab and watch the camera stop; and without
consent the camera is never asked for."""

from __future__ import annotations

import pytest
from django.utils import timezone

from consent.guards import ConsentDenied, DenialReason, require_consent
from consent.models import LedgerEntry, Subject
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from tests.browser_support import LIVE_TRACKS, open_counting_page, screenshot
from tests.factories import make_campaign, make_notice, make_organization

pytestmark = [pytest.mark.browser]

PURPOSES = ("face_analysis",)

# Posts one JPEG drawn in the page to the session the page opened, with the capture token it got.
POST_ONE_FRAME = """
async ([session, token]) => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 48;
  canvas.getContext('2d').fillRect(0, 0, 64, 64);
  const blob = await new Promise(r => canvas.toBlob(r, 'image/jpeg', 0.8));
  const response = await fetch(`/api/v1/capture-sessions/${session}/frames/`, {
    method: 'POST', body: blob, credentials: 'omit',
    headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'image/jpeg'},
  });
  return {status: response.status, body: await response.json()};
}
"""


def consent_to_face_analysis(page, base_url: str, campaign):
    """Consent on the campaign's page; it leads to the camera page, whose widget (returned) waits, camera off."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/c/{campaign.public_id}/?lang=en")
    page.get_by_label("Face analysis").check()
    page.get_by_role("button", name="I consent").click()
    page.wait_for_url(f"**/c/{campaign.public_id}/capture/**")
    widget = page.locator(".visage-capture")
    expect(widget).to_have_attribute("data-state", "idle")
    return widget


def _sessions_exist() -> bool:
    """Whether any capture session exists, asked from another thread: Playwright's sync API runs an event loop
    in this one, where Django refuses database calls."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def ask() -> bool:
        try:
            return CaptureSession.objects.exists()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ask).result()


@pytest.mark.slow
def test_consent_then_stream_shows_real_aggregates_and_withdrawal_stops_the_camera(
    live_server, ledger_flushable, eager, clean_frame_store, warm_engine, face_video
) -> None:
    organization = make_organization(name="Camera Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    make_notice(organization, language="de", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    seen: dict[str, object] = {}
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=face_video)

        # Consent on the campaign's page leads to the camera page, with the camera still off.
        widget = consent_to_face_analysis(page, live_server.url, campaign)
        assert page.evaluate("window.__gumCalls") == 0  # nothing asked before the visitor presses start
        assert "Thank you" in page.locator("main > [role=status]").inner_text()
        script = page.locator("script[data-visage-start-url]")
        assert script.get_attribute("data-visage-token") is None
        assert not _sessions_exist()  # the page opens a session only when the camera starts
        my_data = page.locator("#my-data-link").get_attribute("href")
        assert my_data.startswith(f"/c/{campaign.public_id}/my-data/")  # redirects to the current personal link
        assert "/consent/my-data/" not in page.content()  # the "my data" token is never in the page or its script

        # Start: the session is opened, the browser grants the fake camera, the red indicator and a focused
        # stop button appear.
        with page.expect_response(lambda r: r.url.endswith("/capture/session/")) as opened:
            page.get_by_role("button", name="Start camera").click()
        assert opened.value.status == 201
        started = opened.value.json()
        assert started["capture_token"].startswith("vcs_") and _sessions_exist()
        seen["opened"] = opened.value.text()
        expect(widget).to_have_attribute("data-state", "recording")
        expect(page.locator(".visage-rec")).to_be_visible()
        expect(page.locator(".visage-rec")).to_contain_text("Recording")
        stop = page.get_by_role("button", name="Stop camera")
        expect(stop).to_be_focused()
        assert page.evaluate(LIVE_TRACKS) == 1

        # The real engine's aggregates reach the page: the astronaut looks at the screen and smiles.
        page.wait_for_function(
            "Number(document.querySelector('[data-field=frames_analyzed]').dataset.value || 0) >= 3",
            timeout=120_000,
        )
        expect(page.locator("[data-field=expression]")).to_have_attribute("data-value", "happy")
        seen["attention"] = float(page.locator("[data-field=attention]").get_attribute("data-value"))
        seen["expression_text"] = page.locator("[data-field=expression]").inner_text()
        seen["status"] = page.locator(".visage-status").inner_text()
        screenshot(page, "capture-recording")

        # Withdraw in a second tab, on the "my data" page, with one click.
        other = context.new_page()
        other.goto(live_server.url + my_data)
        assert other.url.split("/")[5] not in seen["opened"]  # the script never got the "my data" token
        other.get_by_role("button", name="Withdraw “Face analysis”").click()
        expect(other.locator("td[data-state=withdrawn]")).to_have_count(1)
        seen["withdrawn_at"] = timezone.now()

        # The capture tab stops on its own: every track ended, the indicator gone, and it says why.
        expect(widget).to_have_attribute("data-state", "stopped", timeout=20_000)
        expect(widget).to_have_attribute("data-reason", "withdrawn")
        expect(page.locator(".visage-rec")).to_be_hidden()
        expect(stop).to_be_hidden()
        assert page.evaluate(LIVE_TRACKS) == 0
        assert "withdrawn" in page.locator(".visage-status").inner_text()
        screenshot(page, "capture-withdrawn")
        posts_at_stop = page.evaluate("window.__framePosts")
        page.wait_for_timeout(1500)  # a few frame intervals: nothing more goes out
        assert page.evaluate("window.__framePosts") == posts_at_stop > 0

        # The server refuses a frame for that session now, with a consent error.
        refused = page.evaluate(POST_ONE_FRAME, [started["session"], started["capture_token"]])
        seen["refused"] = refused

        # Reloading the camera page opens nothing: a friendly 403 that explains, and no camera code.
        calls = page.evaluate("window.__gumCalls")
        response = page.reload()
        assert response.status == 403
        assert page.locator("[data-reason]").get_attribute("data-reason") == "withdrawn"
        assert page.locator("script[src*='capture.js']").count() == 0
        assert page.evaluate("window.__gumCalls") == 0 and calls == 1
        browser.close()

    assert seen["attention"] >= 0.8, seen
    assert "happy" in str(seen["expression_text"]), seen
    refused = seen["refused"]
    assert refused["status"] == 403, refused
    assert refused["body"]["error"]["code"] == "consent_required", refused

    subject = Subject.objects.get(organization=organization)
    with pytest.raises(ConsentDenied) as denied:
        require_consent(organization_id=organization.pk, subject_id=subject.pk, purpose="face_analysis")
    assert denied.value.reason == DenialReason.WITHDRAWN
    session = CaptureSession.objects.get(subject=subject)
    assert session.source == "browser_stream" and session.end_reason == "consent_withdrawn"
    withdrawn = LedgerEntry.objects.get(organization=organization, event="withdrawn").occurred_at
    frames = Frame.objects.filter(session=session)
    assert frames.filter(received_at__lt=withdrawn, status="analyzed").count() >= 3
    # Nothing was analysed after the withdrawal (a frame already in intake when it committed is dropped), and what
    # was derived is gone.
    assert not frames.filter(received_at__gt=withdrawn).exclude(status="dropped").exists()
    assert not frames.filter(status="analyzed", finished_at__gt=withdrawn).exists()
    assert not frames.filter(status="queued").exists()
    assert not FrameFeatures.objects.filter(subject=subject).exists()
    assert session.aggregates == {}


def test_capture_page_without_consent_never_asks_for_the_camera(live_server, ledger_flushable) -> None:
    organization = make_organization(name="No Consent Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    make_notice(organization, language="de", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    url = f"{live_server.url}/c/{campaign.public_id}/capture/"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None, locale="de-DE")

        response = page.goto(url)
        assert response.status == 403
        assert page.locator("html").get_attribute("lang") == "de"
        assert page.locator("h1").inner_text() == "Die Kamera bleibt aus"
        screenshot(page, "capture-no-consent-de")
        link = page.get_by_role("link", name="Zum Hinweis und zur Einwilligung")
        assert link.get_attribute("href").startswith(f"/c/{campaign.public_id}/")

        response = page.goto(url + "?lang=en")
        assert response.status == 403
        assert page.locator("[role=alert]").inner_text().startswith("There is no consent to face analysis")
        assert page.locator("script[src*='capture.js'], video, .visage-capture").count() == 0
        page.wait_for_timeout(500)
        assert page.evaluate("window.__gumCalls") == 0

        # Refusing on the consent page does not open the camera page either.
        page.goto(f"{live_server.url}/c/{campaign.public_id}/?lang=en")
        page.get_by_role("button", name="I refuse").click()
        assert page.goto(url).status == 403
        assert page.evaluate("window.__gumCalls") == 0
        browser.close()

    assert not CaptureSession.objects.exists()


def test_a_page_left_open_after_withdrawal_opens_no_session_and_no_camera(live_server, ledger_flushable) -> None:
    """The page was loaded with consent; the visitor withdraws in another tab, then presses Start on the old page:
    the server refuses to open a session, and the camera is never asked for."""
    organization = make_organization(name="Stale Page Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        widget = consent_to_face_analysis(page, live_server.url, campaign)

        other = context.new_page()
        other.goto(live_server.url + page.locator("#my-data-link").get_attribute("href"))
        other.get_by_role("button", name="Withdraw “Face analysis”").click()
        expect(other.locator("td[data-state=withdrawn]")).to_have_count(1)

        with page.expect_response(lambda r: r.url.endswith("/capture/session/")) as opened:
            page.get_by_role("button", name="Start camera").click()
        assert opened.value.status == 403
        expect(widget).to_have_attribute("data-state", "stopped")
        expect(widget).to_have_attribute("data-reason", "withdrawn")
        assert "withdrawn" in page.locator(".visage-status").inner_text()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__gumCalls") == 0
        assert not _sessions_exist()
        browser.close()
