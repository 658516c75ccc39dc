"""The campaign report and the admin's home in headless Chromium: a marketer logs in, opens a seeded campaign's
report, and every chart is drawn by Chart.js from the page's data (served from our static files); the home shows
the dashboard above the app list. Screenshots go to the test's tmp dir and to var/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Allocation
from campaigns.services import capture_session_open
from consent.services import consent_grant, consent_refuse, consent_shown
from tests.browser_support import launch_chromium
from tests.campaigns.experiment_factories import make_visitor, seed_experiment
from tests.factories import make_campaign, make_member, make_notice, make_organization, make_subject, make_variant
from tests.purges import make_face_data
from tests.web_server import ROOT

pytestmark = [pytest.mark.browser]

SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "pw-123456!"

# Every canvas on the page has a Chart.js chart with at least one drawn value.
CHARTS_DRAWN = """
(ids) => ids.every((id) => {
  const canvas = document.getElementById(id);
  const chart = canvas && window.Chart && Chart.getChart(canvas);
  return chart && chart.data.datasets.length > 0
    && chart.data.datasets.some((d) => d.data.some((v) => v !== null && v !== undefined))
    && canvas.width > 0 && canvas.height > 0;
})
"""


def _seed(org) -> Any:
    """A running 3-arm bandit reweighted twice over a week, with a holdout, decisions, conversions, a consent
    funnel on its campaign and twelve consenting visitors' frames for the reaction metrics."""
    campaign = make_campaign(org)
    campaign.name = "Spring sale"
    campaign.save(update_fields=["name"])
    variants = [make_variant(campaign, key="standard", default=True), make_variant(campaign, key="bold-offer"),
                make_variant(campaign, key="calm-offer")]
    now = timezone.now()
    seeded = seed_experiment(campaign, variants, kind="bandit", holdout=0.05, key="spring-bandit",
                             name="Spring headline bandit", started_at=now - timedelta(days=7))
    for number, (days_ago, weights) in enumerate([(5, [0.3, 0.45, 0.25]), (3, [0.2, 0.65, 0.15])], start=1):
        Allocation.objects.create(organization=org, phase=seeded.phase, number=number,
                                  starts_at=now - timedelta(days=days_ago), weights=weights, note="thompson")
    rates = [0.08, 0.16, 0.06]
    for day in range(7):
        for index, arm in enumerate(seeded.arms):
            visitors = 12 + 4 * day if index == 1 else 12 + day
            for i in range(visitors):
                at = now - timedelta(days=6 - day, hours=3, minutes=i)
                converted = (i * rates[index] * 7) % 7 < rates[index] * 7  # about rate of them
                make_visitor(seeded, arm, converted=converted, at=at, device="mobile" if i % 3 else "desktop",
                             language="de" if i % 4 == 0 else "en")
        make_visitor(seeded, None, converted=day % 3 == 0, at=now - timedelta(days=6 - day, hours=4))
    notice = make_notice(org)
    for i in range(40):
        consent_shown(organization=org, notice=notice, channel="consent_page", context_ref=campaign.context_ref,
                      visitor_id=f"browser-{i}")
    for i in range(22):
        subject = make_subject(org)
        consent_grant(organization=org, subject=subject, notice=notice, purposes=["face_analysis"],
                      channel="consent_page", context_ref=campaign.context_ref)
        if i < 12:  # seen by the camera after entering an arm: the reaction metrics' visitors
            make_visitor(seeded, seeded.arms[i % 3], converted=False, at=now - timedelta(hours=2), subject=subject)
            session, _ = capture_session_open(organization=org, subject=subject, campaign=campaign,
                                              source="browser_stream")
            make_face_data(session, frames=4, smile=0.2 + 0.3 * (i % 3))
    for _ in range(9):
        consent_refuse(organization=org, notice=notice, purposes=["face_analysis"], channel="consent_page",
                       context_ref=campaign.context_ref)
    return campaign


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def _save(page: Any, tmp_path: Path, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / name), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    return tmp_path / name


def test_report_page_draws_every_chart_from_our_static_files(live_server, ledger_flushable, tmp_path) -> None:
    org = make_organization(name="Report Shop")
    campaign = _seed(org)
    marketer = make_member(org, role="marketer", password=PASSWORD)
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        _log_in(page, live_server.url, marketer.username)
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
        page.click("#campaign-report-link")
        page.wait_for_selector("#report-summary")
        charts = ["chart-cumulative", "chart-visitors", "chart-weights", "chart-funnel"]
        if page.locator("#chart-reactions").count():
            charts.append("chart-reactions")
        page.wait_for_function(CHARTS_DRAWN, arg=charts)
        lines = page.evaluate("() => Chart.getChart(document.getElementById('chart-cumulative')).data.datasets"
                              ".filter((d) => !d.band).map((d) => d.label)")
        funnel = page.evaluate("() => Chart.getChart(document.getElementById('chart-funnel')).data.datasets[0].data")
        page.locator("#report-funnel details summary").click()
        shot = _save(page, tmp_path, "report.png")
        page.emulate_media(color_scheme="dark")  # the admin's "auto" theme follows it; the charts recolour
        page.wait_for_function("() => getComputedStyle(document.body).backgroundColor !== 'rgb(255, 255, 255)'"
                               " && Chart.defaults.color === getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--body-quiet-color').trim()")
        page.wait_for_function(CHARTS_DRAWN, arg=charts)
        _save(page, tmp_path, "report-dark.png")
        browser.close()

    assert errors == []
    assert lines == ["Standard", "Bold-Offer", "Calm-Offer"]
    assert funnel == [40, 22, 9, 0]
    assert shot.stat().st_size > 10_000
    origins = {url.split("/")[2] for url in requested if url.startswith("http")}
    assert origins == {live_server.url.split("/")[2]}  # no CDN: everything from the server itself
    assert any(url.endswith("/static/vendor/chartjs/chart.umd.min.js") for url in requested)


def test_admin_home_shows_the_dashboard_above_the_app_list(live_server, ledger_flushable, tmp_path) -> None:
    org = make_organization(name="Home Shop")
    campaign = _seed(org)
    owner = make_member(org, role="owner", password=PASSWORD)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        _log_in(page, live_server.url, owner.username)
        page.goto(f"{live_server.url}/admin/")
        running = page.locator(f'#dashboard-running tr[data-campaign="{campaign.pk}"]').inner_text()
        consent_today = page.locator("#dashboard-consent tbody tr").last.inner_text()
        dashboard_box = page.locator("#visage-dashboard").bounding_box()
        apps_box = page.locator("#visage-app-list").bounding_box()
        attention = page.locator("#dashboard-attention li").count()
        page.locator(f'#dashboard-running tr[data-campaign="{campaign.pk}"] a').click()
        page.wait_for_selector("#report-summary")
        page.go_back()
        page.wait_for_selector("#visage-dashboard")
        shot = _save(page, tmp_path, "dashboard.png")
        browser.close()

    assert "Spring sale" in running and "Spring headline bandit" in running
    assert "22" in consent_today and "9" in consent_today
    assert dashboard_box["y"] + dashboard_box["height"] <= apps_box["y"]
    assert attention >= 1  # the seeded bandit's exposures do not follow its reweighted shares
    assert shot.stat().st_size > 10_000
