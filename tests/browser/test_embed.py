"""The embeddable static/visage/capture.js on a partner's plain HTML page, served from another origin: the
partner's server opens the capture session with its API key and puts the capture token on the page."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.services import consent_withdraw
from faceanalysis.models import CaptureSession, Frame
from tests.browser_support import LIVE_TRACKS, open_counting_page, screenshot
from tests.conftest import api_client
from tests.factories import make_api_key, make_campaign, make_grant, make_notice, make_organization, make_subject

pytestmark = [pytest.mark.browser]

PARTNER_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Partner shop</title></head>
<body>
<h1>Partner shop</h1>
<p>Our own page, with Visage's capture widget below.</p>
<div id="camera"></div>
<script src="{api}/static/visage/capture.js" data-visage-target="#camera" data-visage-api="{api}"
  data-visage-token="{token}" data-visage-session="{session}" data-visage-fps="2"></script>
</body></html>
"""

SCRIPTED_PAGE = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>Partner shop</title>
<script src="{api}/static/visage/capture.js"></script></head>
<body><div id="camera"></div>
<script>
  window.updates = [];
  window.widget = Visage.capture({{target: '#camera', api: '{api}', token: '{token}', session: '{session}',
    maxSeconds: {max_seconds}, fps: {fps}, onUpdate: (u) => window.updates.push(u.state + ':' + u.reason)}});
</script>
</body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def partner_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static file server on another origin than the live server (another port)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def _partner_session() -> tuple[CaptureSession, str]:
    """What a partner's server does: a consented subject, then a capture session through the API."""
    organization = make_organization(name="Partner")
    notice = make_notice(organization, language="en", purposes=("face_analysis",))
    campaign = make_campaign(organization, purposes=("face_analysis",))
    subject = make_subject(organization, partner_user_id="user-42")
    make_grant(subject, notice)
    key = make_api_key(organization)[1]
    response = api_client(key).post(
        "/api/v1/capture-sessions/", {"subject": str(subject.public_id), "campaign": campaign.public_id},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    return CaptureSession.objects.get(public_id=body["id"]), body["capture_token"]


@pytest.mark.slow
def test_embedded_script_streams_from_a_partner_page_with_a_partner_api_token(
    live_server, ledger_flushable, eager, clean_frame_store, warm_engine, face_video, partner_site, settings
) -> None:
    origin, root = partner_site
    settings.VISAGE_CAPTURE_ALLOWED_ORIGINS = [origin]
    session, token = _partner_session()
    (root / "index.html").write_text(
        PARTNER_PAGE.format(api=live_server.url, token=token, session=session.public_id), encoding="utf-8"
    )
    seen: dict[str, object] = {}
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=face_video)
        page.goto(f"{origin}/index.html")
        widget = page.locator("#camera .visage-capture")
        expect(widget).to_have_attribute("data-state", "idle")
        assert page.evaluate("window.__gumCalls") == 0

        page.get_by_role("button", name="Start camera").click()
        expect(widget).to_have_attribute("data-state", "recording")
        expect(page.locator(".visage-rec")).to_be_visible()
        screenshot(page, "embed-recording")
        page.wait_for_function(
            "Number(document.querySelector('[data-field=frames_analyzed]').dataset.value || 0) >= 2",
            timeout=120_000,
        )
        expect(page.locator("[data-field=expression]")).to_have_attribute("data-value", "happy")
        seen["attention"] = float(page.locator("[data-field=attention]").get_attribute("data-value"))

        # The stop button works from the keyboard.
        page.get_by_role("button", name="Stop camera").focus()
        page.keyboard.press("Enter")
        expect(widget).to_have_attribute("data-state", "stopped")
        expect(widget).to_have_attribute("data-reason", "user")
        expect(page.locator(".visage-rec")).to_be_hidden()
        assert page.evaluate(LIVE_TRACKS) == 0
        expect(page.locator(".visage-status")).to_contain_text("You stopped the camera")
        page.wait_for_timeout(1000)  # the end request goes out after the tracks stop
        browser.close()

    assert seen["attention"] >= 0.8, seen
    session.refresh_from_db()
    assert session.ended_at is not None and session.end_reason == "client"
    assert Frame.objects.filter(session=session, status="analyzed").count() >= 2
    assert session.aggregates["expression_distribution"]["happy"] >= 0.8


def test_embedded_script_never_opens_the_camera_without_a_live_session_and_stops_at_its_time_limit(
    live_server, ledger_flushable, face_video, partner_site, settings
) -> None:
    """No token, a session whose consent was withdrawn, or an origin Visage does not allow: the camera is never
    asked for. A live session on an allowed origin records and stops by itself at its time limit."""
    origin, root = partner_site
    settings.VISAGE_CAPTURE_ALLOWED_ORIGINS = [origin]
    blocked_origin = origin.replace("127.0.0.1", "localhost")  # the same files, an origin not on the list
    session, token = _partner_session()
    withdrawn, withdrawn_token = _partner_session()
    consent_withdraw(organization=withdrawn.organization, subject=withdrawn.subject, channel="my_data_page")
    pages = {
        "none.html": ("", "", 60, 2),
        "withdrawn.html": (withdrawn_token, withdrawn.public_id, 60, 2),
        "short.html": (token, session.public_id, 1, 0.2),  # the time limit comes before the first frame
    }
    for name, (page_token, page_session, max_seconds, fps) in pages.items():
        (root / name).write_text(
            SCRIPTED_PAGE.format(api=live_server.url, token=page_token, session=page_session,
                                 max_seconds=max_seconds, fps=fps),
            encoding="utf-8",
        )
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=face_video, locale="de-DE")

        page.goto(f"{origin}/none.html")
        widget = page.locator(".visage-capture")
        expect(widget).to_have_attribute("data-state", "refused")
        assert page.get_by_role("button", name="Kamera starten").count() == 0
        expect(page.locator(".visage-status")).to_contain_text("keine Erlaubnis")
        page.evaluate("window.widget.start()")
        assert page.evaluate("window.__gumCalls") == 0

        page.goto(f"{origin}/withdrawn.html")
        page.get_by_role("button", name="Kamera starten").click()
        expect(widget).to_have_attribute("data-reason", "withdrawn")
        expect(page.locator(".visage-status")).to_contain_text("widerrufen")
        screenshot(page, "embed-withdrawn-de")
        assert page.evaluate("window.__gumCalls") == 0

        page.goto(f"{blocked_origin}/short.html")
        page.get_by_role("button", name="Kamera starten").click()
        expect(widget).to_have_attribute("data-reason", "error")  # the browser blocked the call to Visage
        assert page.evaluate("window.__gumCalls") == 0

        page.goto(f"{origin}/short.html")
        page.get_by_role("button", name="Kamera starten").click()
        expect(widget).to_have_attribute("data-state", "stopped", timeout=10_000)
        expect(widget).to_have_attribute("data-reason", "time")
        assert page.evaluate(LIVE_TRACKS) == 0 and page.evaluate("window.__gumCalls") == 1
        updates = page.evaluate("window.updates")
        assert "recording:" in updates and updates[-1] == "stopped:time"
        expect(page.locator(".visage-rec")).to_be_hidden()
        page.wait_for_timeout(500)  # the end request goes out after the tracks stop
        browser.close()

    session.refresh_from_db()
    assert session.end_reason == "client" and not Frame.objects.filter(session=session).exists()
