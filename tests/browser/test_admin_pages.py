"""The admin in headless Chromium at 1280 x 800, a laptop's width: no table is cut off or scrolls sideways on
any list a member opens, and a capture session's page shows its aggregates, readable."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.browser_support import launch_chromium, screenshot
from tests.faceanalysis.conftest import fake_engine  # noqa: F401  (a fixture: the FAKE engine, no model)
from tests.factories import make_api_key, make_campaign, make_grant, make_member, make_notice, make_subject

pytestmark = [pytest.mark.browser]

# Every table on the page fits its box and the window: nothing hidden to the right, no sideways scrolling.
OVERFLOWING_TABLES = """
() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.documentElement.scrollWidth > width) out.push(`page ${document.documentElement.scrollWidth} > ${width}`);
  for (const table of document.querySelectorAll('table')) {
    const box = table.parentElement;
    const right = table.getBoundingClientRect().right;
    if (box.scrollWidth > box.clientWidth || right > width + 1) {
      out.push(`${table.id || table.className || 'table'}: ${box.scrollWidth} > ${box.clientWidth}, right ${right}`);
    }
  }
  return out;
}
"""


def _populate(org, monkeypatch) -> Any:
    """A realistic organization: keys, consent evidence, campaigns and capture sessions with frames analysed
    (by the FAKE engine), dropped and failed. Intake queues nothing; the test analyses what it chooses."""
    from faceanalysis import dispatch
    from faceanalysis.models import Frame
    from faceanalysis.services.capture import capture_session_end
    from faceanalysis.services.context import session_aggregates_refresh
    from faceanalysis.services.intake import IncomingFrame, frame_intake
    from faceanalysis.services.worker import frame_analyze, frame_drop
    from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session

    with monkeypatch.context() as patch:  # only for making the data, not for the pages
        patch.setattr(dispatch, "send_analysis", lambda *args, **kwargs: None)

        owner = make_member(org, role="owner")
        for _ in range(3):
            api_key, _ = make_api_key(org)
            api_key.created_by = owner
            api_key.save(update_fields=["created_by"])
        notice = make_notice(org, purposes=("face_analysis", "personalization"))
        for _ in range(3):
            make_grant(make_subject(org), notice)
        make_campaign(org)
        sessions = []
        for index in range(3):
            session, _ = make_capture_session(org, media_ref=f"https://shop.example/products/spring-collection/{index}")
            frames = frame_intake(
                session=session,
                frames=[IncomingFrame(astronaut_jpeg(), "image/jpeg", media_time_ms=i * 500) for i in range(4)],
            )
            for frame in frames[:2]:
                frame_analyze(frame_id=frame.pk)
            frame_drop(frame_id=frames[2].pk, reason="consent_withdrawn")
            Frame.objects.filter(pk=frames[3].pk).update(status=Frame.Status.FAILED, reason="decode_error")
            session_aggregates_refresh(session_id=session.pk, grant=session.grant)
            if index == 0:
                capture_session_end(session=session)
            sessions.append(session)
    return owner, sessions


def _pages(org, sessions) -> list[str]:
    from faceanalysis.models import Frame, FrameFeatures

    frame = Frame.objects.filter(session=sessions[0]).first()
    features = FrameFeatures.objects.filter(session=sessions[0]).first()
    return [
        "/admin/",
        "/admin/accounts/apikey/",
        "/admin/accounts/membership/",
        "/admin/accounts/organization/",
        "/admin/campaigns/campaign/",
        "/admin/consent/grant/",
        "/admin/consent/ledgerentry/",
        "/admin/consent/noticeversion/",
        "/admin/consent/retentionpolicy/",
        "/admin/consent/subject/",
        "/admin/faceanalysis/capturesession/",
        f"/admin/faceanalysis/capturesession/{sessions[0].pk}/change/",
        "/admin/faceanalysis/frame/",
        f"/admin/faceanalysis/frame/{frame.pk}/change/",
        "/admin/faceanalysis/framefeatures/",
        f"/admin/faceanalysis/framefeatures/{features.pk}/change/",
        "/admin/faceanalysis/facecontext/",
    ]


def _browser_session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.usefixtures("clean_frame_store", "fake_engine")
@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_admin_tables_fit_a_1280_pixel_window(live_server, ledger_flushable, monkeypatch, who: str) -> None:
    from django.contrib.auth import get_user_model

    from tests.factories import make_organization

    org = make_organization(name="Laptop Shop")
    owner, sessions = _populate(org, monkeypatch)
    _populate(make_organization(name="Other Shop"), monkeypatch)  # operators see every organization's rows
    pages = _pages(org, sessions)
    if who == "superuser":
        owner = get_user_model().objects.create_superuser("operator", "ops@example.test", "pw-123456!")
    cookie = _browser_session(owner)
    from playwright.sync_api import sync_playwright

    overflowing: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        for path in pages:
            response = page.goto(live_server.url + path)
            assert response.status == 200, path
            screenshot(page, f"admin-1280-{who}" + path.replace("/", "-").rstrip("-"))
            problems = page.evaluate(OVERFLOWING_TABLES)
            if problems:
                overflowing[path] = problems
        browser.close()
    assert overflowing == {}


@pytest.mark.usefixtures("clean_frame_store", "fake_engine")
@pytest.mark.parametrize("role", ["owner", "marketer", "analyst"])
def test_capture_session_page_shows_its_aggregates_to_each_member_role(
    live_server, ledger_flushable, monkeypatch, role: str
) -> None:
    from tests.factories import make_organization

    org = make_organization(name="Report Shop")
    _, sessions = _populate(org, monkeypatch)
    cookie = _browser_session(make_member(org, role=role))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/admin/faceanalysis/capturesession/{sessions[1].pk}/change/")
        summary = page.locator("#session-aggregates")
        text = summary.inner_text()
        screenshot(page, f"admin-session-{role}")
        overflowing = page.evaluate(OVERFLOWING_TABLES)
        browser.close()
    # The FAKE engine's face looks at the screen and smiles in every analysed frame.
    for label, value in [
        ("Attention share", "100 %"), ("Smile share", "100 %"), ("happy", "100 %"), ("Frames analysed", "2"),
        ("Quality rejections", "0 %"), ("Dropped (no consent)", "1"), ("Failed", "1"),
    ]:
        row = next((line for line in text.splitlines() if line.startswith(label)), "")
        assert value in row, (label, text)
    assert "Blink rate" in text and "Latency" in text and "None" not in text
    assert overflowing == []
