"""static/visage/personalize.js against a small fake Visage (no Django): Visage down, a 500, a slow answer past the
timeout, bad JSON or a wrong shape all leave the page's own default content shown and throw nothing; a good answer
fills the slot (text as text, only the html field as HTML, only http(s) URLs), and events carry the decision."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import launch_chromium
from tests.web_server import free_port

pytestmark = [pytest.mark.browser]

STATIC = Path(__file__).resolve().parents[2] / "static" / "visage"

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
{before}<script src="/personalize.js" data-visage-campaign="camp1" data-visage-api="{api}"
  data-visage-timeout="{timeout}"></script>
</head><body>
<section data-visage-slot="hero" id="hero">
  <h2 data-visage-field="headline">Default headline</h2>
  <p data-visage-field="body">Default body</p>
  <img data-visage-field="image" src="/default.png" alt="">
  <a data-visage-field="cta" href="/default-offer">Default offer</a>
  <div data-visage-field="html"><i>default html</i></div>
</section>
<p data-visage-slot="bare" id="bare">Bare default</p>
{after}</body></html>
"""

DECISION = {
    "decision_id": "0b6c7a1e-8f7e-4a59-9b7b-3d0c6f5f0a11", "campaign": "camp1",
    "variant": {"key": "smile", "name": "Smile", "content": {
        "headline": "<b>Smile</b> offer", "body": "Body text", "image_url": "javascript:alert(1)",
        "cta_text": "Take it", "cta_url": "https://shop.example/smile", "payload": {}, "html": "<em>sanitised</em>"}},
    "reason": {"kind": "rule", "rule": 1, "experiment_arm": None}, "skipped": [], "cache_ttl_seconds": 60,
}


class FakeVisage(http.server.BaseHTTPRequestHandler):
    """/<mode>/api/v1/public/...: ok, 500, slow (2 s), badjson, shape; CORS with credentials for any Origin."""

    posts: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", ""))
        self.send_header("Access-Control-Allow-Credentials", "true")

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "POST")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Accept")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        mode = self.path.split("/")[1]
        FakeVisage.posts.append({"mode": mode, "path": self.path, "body": body})
        if mode == "slow":
            time.sleep(2)
        status, answer = 200, json.dumps(DECISION if "decisions" in self.path else {"ok": True}).encode()
        if mode == "500":
            status, answer = 500, b'{"error": {"code": "server_error"}}'
        elif mode == "badjson":
            answer = b"<html>not json"
        elif mode == "shape":
            answer = b'{"variant": "smile"}'
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the page gave up at its timeout
            self.wfile.write(answer)


def _serve(handler: Any) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_visage() -> Iterator[str]:
    FakeVisage.posts = []
    yield from _serve(FakeVisage)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The partner's pages and a copy of both scripts, from another origin than the fake Visage."""
    import functools

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    for name in ("personalize.js", "capture.js"):
        shutil.copy(STATIC / name, tmp_path / name)
    yield from ((origin, tmp_path) for origin in _serve(functools.partial(Quiet, directory=str(tmp_path))))


def _write(root: Path, name: str, api: str, *, timeout: int = 800, capture_first: bool = False) -> None:
    capture = '<script src="/capture.js"></script>\n'
    root.joinpath(name).write_text(
        PAGE.format(api=api, timeout=timeout, before=capture if capture_first else "",
                    after="" if capture_first else capture),
        encoding="utf-8",
    )


def test_every_failure_shows_the_default_content_and_throws_nothing(fake_visage, shop) -> None:
    origin, root = shop
    down = f"http://localhost:{free_port()}"
    cases = {"down": down, "500": f"{fake_visage}/500", "slow": f"{fake_visage}/slow",
             "badjson": f"{fake_visage}/badjson", "shape": f"{fake_visage}/shape"}
    for name, api in cases.items():
        _write(root, f"{name}.html", api, timeout=300, capture_first=name == "500")
    errors: list[str] = []
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        for name in cases:
            started = time.monotonic()
            page.goto(f"{origin}/{name}.html")
            hero = page.locator("#hero")
            expect(hero).to_have_attribute("data-visage-state", "timeout" if name == "slow" else "default")
            assert hero.evaluate("e => getComputedStyle(e).visibility") == "visible", name
            assert page.locator("#bare").evaluate("e => getComputedStyle(e).visibility") == "visible", name
            assert page.locator("[data-visage-field=headline]").inner_text() == "Default headline", name
            assert page.locator("#bare").inner_text() == "Bare default", name
            assert page.evaluate("typeof Visage.capture === 'function' && typeof Visage.decide === 'function'")
            if name == "slow":
                assert time.monotonic() - started < 1.9  # shown at the timeout, not when the answer came
                page.wait_for_timeout(2200)  # the late answer arrives and is dropped: no flicker
                assert page.locator("[data-visage-field=headline]").inner_text() == "Default headline"
                # Asked again on purpose (after the camera, say), a slow answer is waited for (up to 5 s).
                assert page.evaluate("Visage.decide().then(d => d.variant.key)") == "smile"
                expect(hero).to_have_attribute("data-visage-state", "decided")
                continue
            # Asking again fails the same way: a Promise of null, never a rejection.
            assert page.evaluate("Visage.decide().then(d => d === null)") is True, name
            assert page.evaluate("Visage.convert('purchase', {value: 1}).then(ok => ok)") is False, name
        browser.close()
    assert errors == []
    assert all(post["body"]["campaign"] == "camp1" for post in FakeVisage.posts if "decisions" in post["path"])


def test_a_decision_fills_slots_safely_and_events_carry_it_once(fake_visage, shop) -> None:
    origin, root = shop
    _write(root, "ok.html", f"{fake_visage}/ok")
    errors: list[str] = []
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin")
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{origin}/ok.html?utm_source=news")
        hero = page.locator("#hero")
        expect(hero).to_have_attribute("data-visage-state", "decided")
        expect(hero).to_have_attribute("data-visage-variant", "smile")
        headline = page.locator("[data-visage-field=headline]")
        assert headline.inner_text() == "<b>Smile</b> offer" and headline.locator("b").count() == 0  # text, not HTML
        assert page.locator("[data-visage-field=body]").inner_text() == "Body text"
        assert page.locator("[data-visage-field=image]").get_attribute("src") == "/default.png"  # javascript: refused
        cta = page.locator("[data-visage-field=cta]")
        assert cta.get_attribute("href") == "https://shop.example/smile" and cta.inner_text() == "Take it"
        assert page.locator("[data-visage-field=html] em").inner_text() == "sanitised"
        assert page.locator("#bare").inner_text() == "<b>Smile</b> offer"  # no fields: the headline as text
        cookie = next(c for c in context.cookies() if c["name"] == "visage_vid")
        assert cookie["sameSite"] == "Lax" and cookie["path"] == "/" and cookie["expires"] > time.time() + 360 * 86400
        # Seen for a second: one impression per slot, and no second one however long it stays in view.
        page.wait_for_timeout(2500)
        assert page.evaluate("Visage.convert('purchase', {value: 49.9, currency: 'eur'})") is True
        assert page.evaluate("Visage.track('video_50', {value: 1})") is True
        seen = [page.evaluate("new Promise(r => Visage.onDecision(d => r(d.decision_id)))")]
        first_view = list(FakeVisage.posts)
        reloaded = context.new_page()
        reloaded.goto(f"{origin}/ok.html")
        expect(reloaded.locator("#hero")).to_have_attribute("data-visage-state", "decided")
        browser.close()

    assert errors == [] and seen == [DECISION["decision_id"]]
    decisions = [p for p in FakeVisage.posts if p["path"] == "/ok/api/v1/public/decisions/"]
    body = decisions[0]["body"]
    visitor = body["visitor_id"]
    assert cookie["value"] == visitor and len(visitor) == 22 and set(visitor) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decisions[1]["body"]["visitor_id"] == visitor  # the cookie keeps it across page views
    assert body["context"]["language"] == "de-DE" and body["context"]["timezone"] == "Europe/Berlin"
    assert body["context"]["url"].endswith("/ok.html?utm_source=news")
    assert all(visitor not in p["path"] for p in FakeVisage.posts)  # never in a URL
    events = [p["body"] for p in first_view if p["path"] == "/ok/api/v1/public/events/"]
    assert sorted(e["name"] for e in events if e["kind"] == "impression") == ["bare", "hero"]
    conversion = next(e for e in events if e["kind"] == "conversion")
    assert conversion["name"] == "purchase" and conversion["value"] == 49.9 and conversion["currency"] == "EUR"
    assert next(e for e in events if e["kind"] == "custom")["name"] == "video_50"
    assert all(e["decision"] == DECISION["decision_id"] and e["visitor_id"] == visitor for e in events)
    assert len({e["client_event_id"] for e in events}) == len(events)
