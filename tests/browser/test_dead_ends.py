"""Dead ends a new visitor or marketer hit, in headless Chromium: a campaign that is not available says so plainly
(in the visitor's language, also under DEBUG), the marketer's preview records nothing, the capture page's "my
data" link survives "Replace my link" (and the old link says it was replaced), and a withdrawal made in another
tab takes the "consent recorded" box off the open capture page."""

from __future__ import annotations

import re

import pytest

from campaigns.models import Campaign
from consent.models import Grant, LedgerEntry, ReplacedAccessToken, Subject
from tests.browser_support import open_counting_page, screenshot
from tests.factories import make_campaign, make_member, make_notice, make_organization, make_retention_policy

pytestmark = [pytest.mark.browser]

PURPOSES = ("face_analysis",)


def _consent(page, base_url: str, campaign) -> None:
    page.goto(f"{base_url}/c/{campaign.public_id}/?lang=en")
    page.get_by_label("Face analysis").check()
    page.get_by_role("button", name="I consent").click()
    page.wait_for_url(f"**/c/{campaign.public_id}/capture/**")


def test_a_campaign_that_is_not_ready_says_so_plainly_in_the_visitors_language(
    live_server, ledger_flushable, settings
) -> None:
    settings.DEBUG = True  # config.settings.local: still the plain page, never Django's debug 404
    organization = make_organization(name="Unready Shop")
    make_retention_policy(organization)
    unready = make_campaign(organization, purposes=PURPOSES)  # active, but no notice for its purposes
    make_notice(organization, language="en", purposes=("face_analysis", "personalization"))
    english_only = make_campaign(organization, purposes=("face_analysis", "personalization"))
    ended = make_campaign(organization, purposes=PURPOSES, status=Campaign.Status.ENDED)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None, locale="de-DE")
        # (The capture page of the unready campaign is the guard's: no consent here, so the camera stays off.)
        for campaign, status, paths in ((unready, 404, ("",)), (ended, 410, ("", "capture/"))):
            for path in paths:
                response = page.goto(f"{live_server.url}/c/{campaign.public_id}/{path}")
                assert response.status == status
                assert page.locator("html").get_attribute("lang") == "de"
                assert page.locator("h1").inner_text() == "Diese Kampagne ist derzeit nicht verfügbar."
                assert "Traceback" not in page.content() and "URLconf" not in page.content()
                assert page.locator("form, video, script[src*='capture.js']").count() == 0
        screenshot(page, "campaign-unavailable-de")
        page.get_by_role("link", name="English").click()
        assert page.locator("h1").inner_text() == "This campaign is not available right now."

        # A notice in English only: shown in English, and the German visitor is told so in German.
        response = page.goto(f"{live_server.url}/c/{english_only.public_id}/")
        assert response.status == 200 and page.locator("html").get_attribute("lang") == "en"
        fallback = page.locator("#language-fallback")
        assert fallback.get_attribute("lang") == "de"
        expected = "Der Hinweis ist in Ihrer Sprache nicht verfügbar; er wird auf Englisch gezeigt."
        assert fallback.inner_text() == expected
        assert page.get_by_role("button", name="I consent").is_enabled()
        browser.close()

    assert not LedgerEntry.objects.exclude(event="shown").exists() and not Subject.objects.exists()
    assert LedgerEntry.objects.filter(context_ref=unready.context_ref).count() == 0


def test_a_marketer_previews_a_draft_campaigns_consent_page_and_nothing_is_recorded(
    live_server, ledger_flushable
) -> None:
    organization = make_organization(name="Preview Shop")
    en = make_notice(organization, language="en", purposes=PURPOSES)
    make_notice(organization, language="de", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES, status=Campaign.Status.DRAFT)
    marketer = make_member(organization, role="marketer", password="pw-123456!")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", marketer.username)
        page.fill("#id_password", "pw-123456!")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
        page.get_by_role("link", name="Preview the consent page (records nothing)").click()

        expect(page.locator("#preview-banner")).to_contain_text("Preview: nothing is recorded.")
        # Every control sits in a disabled fieldset: the form has nothing to send, and nowhere to post it.
        assert page.locator("form input, form button").evaluate_all("els => els.every(e => e.matches(':disabled'))")
        assert page.locator("form[method=post]").count() == 0
        assert en.text_hash[:12] in page.content()
        checkbox = page.get_by_label("Face analysis")
        consent, refuse = page.get_by_role("button", name="I consent"), page.get_by_role("button", name="I refuse")
        assert checkbox.is_disabled() and consent.is_disabled() and refuse.is_disabled()
        shown_at = page.url
        consent.click(force=True)  # a disabled button submits nothing: the page stays exactly where it was
        expect(page).to_have_url(shown_at)
        assert page.locator("#preview-banner").is_visible()
        screenshot(page, "campaign-preview")
        page.get_by_role("link", name="Deutsch").click()
        expect(page.locator("#preview-banner")).to_contain_text("Vorschau: Es wird nichts aufgezeichnet.")
        # Visitors still find the draft "not available".
        visitor = browser.new_context().new_page()
        assert visitor.goto(f"{live_server.url}/c/{campaign.public_id}/").status == 404
        browser.close()

    assert not LedgerEntry.objects.exists() and not Subject.objects.exists() and not Grant.objects.exists()


def test_the_capture_pages_my_data_link_survives_replace_my_link(live_server, ledger_flushable) -> None:
    organization = make_organization(name="Link Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES)
    seen: dict[str, str] = {}
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        _consent(page, live_server.url, campaign)
        capture_url = page.url

        # "My data" opens in a new tab; replace the link there.
        with context.expect_page() as opened:
            page.locator("#my-data-link").click()
        my_data = opened.value
        my_data.wait_for_load_state()
        assert my_data.locator("h1").inner_text() == "My data"
        seen["old"] = my_data.url.split("?")[0]
        my_data.get_by_role("button", name="Replace my link").click()
        expect(my_data.locator("[role=status]")).to_contain_text("Your personal link has changed")
        seen["new"] = my_data.url.split("?")[0]
        assert seen["new"] != seen["old"]

        # The old link says it was replaced (410), and nothing else.
        response = my_data.goto(seen["old"])
        assert response.status == 410
        assert my_data.locator("h1").inner_text() == "This link was replaced by a newer one"
        assert my_data.locator("table, form").count() == 0
        screenshot(my_data, "my-data-link-replaced")
        my_data.close()

        # Back on the capture tab, left open since before: its "my data" link leads to the new page.
        with context.expect_page() as reopened:
            page.locator("#my-data-link").click()
        again = reopened.value
        again.wait_for_load_state()
        assert again.url.split("?")[0] == seen["new"]
        assert again.locator("h1").inner_text() == "My data"
        assert again.locator("td[data-state=active]").count() == 1

        # And after a reload too; the page itself never carries the token.
        page.goto(capture_url)
        assert seen["new"].split("/")[-2] not in page.content()
        with context.expect_page() as third:
            page.locator("#my-data-link").click()
        third.value.wait_for_load_state()
        assert third.value.url.split("?")[0] == seen["new"]
        browser.close()

    assert ReplacedAccessToken.objects.filter(organization=organization).count() == 1


def test_withdrawing_in_another_tab_takes_the_thank_you_box_off_the_open_capture_page(
    live_server, ledger_flushable
) -> None:
    organization = make_organization(name="Thanks Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES)
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        _consent(page, live_server.url, campaign)
        thanks = page.locator("main [role=status]").filter(has_text="Thank you. Your consent has been recorded.")
        expect(thanks).to_have_count(1)

        other = context.new_page()
        other.goto(live_server.url + page.locator("#my-data-link").get_attribute("href"))
        other.get_by_role("button", name="Withdraw “Face analysis”").click()
        expect(other.locator("td[data-state=withdrawn]")).to_have_count(1)

        # The capture page was never touched: it notices by itself, drops the box and says why.
        page.bring_to_front()
        expect(thanks).to_have_count(0, timeout=15_000)
        ended = page.locator("#consent-ended")
        expect(ended).to_be_visible()
        expect(ended).to_have_attribute("data-reason", "withdrawn")
        expect(ended).to_contain_text("You withdrew your consent to face analysis")
        assert "Thank you" not in page.locator("main").inner_text()
        widget = page.locator(".visage-capture")
        expect(widget).to_have_attribute("data-state", "stopped")
        expect(widget).to_have_attribute("data-reason", "withdrawn")
        expect(page.get_by_role("button", name="Start camera")).to_be_hidden()
        screenshot(page, "capture-withdrawn-elsewhere")

        # A reload (the welcome flag still in the URL) shows no thank-you either, only the refusal.
        assert "welcome=1" in page.url
        response = page.reload()
        assert response.status == 403
        assert "Thank you" not in page.locator("main").inner_text()
        assert page.locator("[data-reason]").first.get_attribute("data-reason") == "withdrawn"
        assert page.evaluate("window.__gumCalls") == 0
        browser.close()

    assert LedgerEntry.objects.filter(organization=organization, event="withdrawn").count() == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", LedgerEntry.objects.get(event="withdrawn").subject_ref)


def test_the_admin_funnel_counts_a_reloading_visitor_once(live_server, ledger_flushable) -> None:
    organization = make_organization(name="Funnel Shop")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES)
    analyst = make_member(organization, role="analyst", password="pw-123456!")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        for _ in range(3):
            page.goto(f"{live_server.url}/c/{campaign.public_id}/?lang=en")  # one visitor, three loads
        other = browser.new_context().new_page()
        other.goto(f"{live_server.url}/c/{campaign.public_id}/?lang=en")  # a second visitor

        admin = browser.new_context().new_page()
        admin.goto(f"{live_server.url}/admin/login/")
        admin.fill("#id_username", analyst.username)
        admin.fill("#id_password", "pw-123456!")
        admin.get_by_role("button", name="Log in").click()
        admin.goto(f"{live_server.url}/admin/consent/ledgerentry/funnel/")
        row = admin.locator("tbody tr").filter(has_text=campaign.context_ref)
        cells = row.locator("td").all_inner_texts()
        browser.close()

    assert cells[3] == "2", cells  # the Shown column
    assert LedgerEntry.objects.filter(event="shown", context_ref=campaign.context_ref).count() == 4
