"""The segment editor in headless Chromium: a marketer builds a tree with the condition editor's rows (no JSON
typed), sees its live size change as the tree does and a bad parameter's error at its row, saves, recomputes,
and the size-over-time chart is drawn by the vendored Chart.js, everything served by the server itself.
Screenshots go to the test's tmp dir, var/screenshots/ and /tmp/segment_admin.png."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from segments.models import Segment, SegmentRun
from tests.browser_support import launch_chromium
from tests.factories import make_member, make_organization
from tests.segments.factories import World
from tests.web_server import ROOT

pytestmark = [pytest.mark.browser]

SCREENSHOTS = ROOT / "var" / "screenshots"
CHART_DRAWN = """
() => {
  const canvas = document.getElementById('chart-segment-size');
  const chart = canvas && window.Chart && Chart.getChart(canvas);
  return Boolean(chart && chart.data.datasets[0].data.length >= 2 && canvas.width > 0 && canvas.height > 0);
}
"""


def _browser_session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _size(page: Any, expected: str) -> str:
    page.wait_for_function("(n) => document.querySelector('.visage-cond-size').dataset.size === n", arg=expected)
    return page.locator(".visage-cond-size").inner_text()


def test_segment_editor_shows_the_live_size_saves_the_tree_and_draws_the_size_chart(
    live_server, ledger_flushable, tmp_path
) -> None:
    org = make_organization(name="Segment Shop")
    world = World(org)
    for i in range(3):
        world.subject(partner_user_id=f"u-{i}")
    for _ in range(2):
        world.subject()
    cookie = _browser_session(make_member(org, role="marketer"))
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/segments/segment/add/")
        page.fill("#id_key", "linked-clickers")
        page.fill("#id_name", "Linked clickers")
        editor = page.locator(".visage-cond-editor")
        first = '[data-path="definition.all[0]"]'
        editor.locator(f"{first} .visage-cond-field").select_option("subject.partner_linked")
        linked = _size(page, "3")
        editor.locator(f"{first} .visage-cond-value").select_option("false")
        unlinked = _size(page, "2")
        editor.locator(f"{first} .visage-cond-value").select_option("true")
        _size(page, "3")
        # A second condition with a window below the minimum: the server's error appears at its row.
        editor.locator('[data-path="definition"] > .visage-cond-group-head .visage-cond-add-condition').click()
        second = '[data-path="definition.all[1]"]'
        editor.locator(f"{second} .visage-cond-field").select_option("behaviour.clicks")
        editor.locator(f"{second} .visage-cond-op").select_option("gte")
        window = editor.locator(f"{second} .visage-cond-window_seconds")
        window.fill("5")
        window.dispatch_event("change")
        page.wait_for_selector(f"{second}.visage-cond-invalid .visage-cond-node-error")
        node_error = editor.locator(f"{second} .visage-cond-node-error").inner_text()
        window = editor.locator(f"{second} .visage-cond-window_seconds")
        window.fill("86400")
        window.dispatch_event("change")
        # Subjects with no clicks have 0 >= 0: all three linked ones still count.
        after_fix = _size(page, "3")
        invalid_left = editor.locator(".visage-cond-invalid").count()
        page.click("input[name='_continue']")
        page.wait_for_selector(".messagelist .success")
        page.click("#segment-recompute")
        page.wait_for_selector(".messagelist .success")
        page.click("#segment-recompute")
        page.wait_for_selector(".messagelist .success")
        page.wait_for_function(CHART_DRAWN)
        sizes = page.evaluate("() => Chart.getChart(document.getElementById('chart-segment-size')).data.datasets[0]"
                              ".data")
        members = page.locator("#segment-members tbody tr").count()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "segment_admin.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, SCREENSHOTS / "segment_admin.png")
        shutil.copy(shot, Path("/tmp/segment_admin.png"))
        browser.close()

    assert errors == []
    assert linked == "3 subjects now" and unlinked == "2 subjects now" and after_fix == "3 subjects now"
    assert "between 60 and" in node_error and invalid_left == 0
    segment = Segment.objects.get(organization=org)
    assert segment.key == "linked-clickers" and segment.kind == "dynamic"
    assert segment.definition == {"all": [
        {"field": "subject.partner_linked", "op": "eq", "value": True},
        {"field": "behaviour.clicks", "op": "gte", "value": 0, "window_seconds": 86400},
    ]}
    assert SegmentRun.objects.filter(segment=segment).count() >= 2  # the two recomputes (beat may add one)
    assert sizes[-2:] == [3, 3] and members == 3
    assert shot.stat().st_size > 10_000
    origins = {url.split("/")[2] for url in requested if url.startswith("http")}
    assert origins == {live_server.url.split("/")[2]}  # no CDN: everything from the server itself
    assert any(url.endswith("/static/vendor/chartjs/chart.umd.min.js") for url in requested)
