"""End to end in a real browser: read the consent page in German and English, refuse, consent, open the
"my data" link, withdraw with one click; the guard then refuses."""

import pytest

from consent.guards import ConsentDenied, DenialReason, require_consent
from consent.ledger import ledger_verify
from consent.models import Grant, LedgerEntry, Subject
from tests.browser_support import launch_chromium, require_chromium
from tests.factories import make_campaign, make_notice, make_organization

pytestmark = [pytest.mark.browser]

PURPOSES = ("face_analysis", "personalization")


def test_refuse_consent_and_withdraw_in_a_real_browser(live_server, ledger_flushable) -> None:
    organization = make_organization(name="Browser Shop")
    en = make_notice(organization, language="en", purposes=PURPOSES)
    de = make_notice(organization, language="de", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])  # personalization: extra
    url = f"{live_server.url}/c/{campaign.public_id}/"
    require_chromium()

    # Playwright's sync API keeps an event loop around; Django's ORM refuses to run next to one, so the
    # browser part only talks HTTP and the database is checked after it closes.
    seen: dict[str, str] = {}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(locale="de-DE").new_page()
        page.set_default_timeout(15_000)

        # German first (the browser's language), with the German notice.
        page.goto(url)
        assert page.locator("html").get_attribute("lang") == "de"
        assert "Verantwortlicher" in page.locator(".notice").inner_text()
        assert page.locator("input[name=notice]").input_value() == de.text_hash
        assert page.get_by_role("button", name="Ich willige ein").is_visible()

        # Switch to English: the English notice version.
        page.get_by_role("link", name="English").click()
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Controller:" in page.locator(".notice").inner_text()
        assert page.locator("input[name=notice]").input_value() == en.text_hash
        for label in ("Face analysis", "Personalization from face features"):
            assert not page.get_by_label(label).is_checked()  # unticked, and labelled

        # Refuse: recorded, nothing analysed.
        page.get_by_role("button", name="I refuse").click()
        assert "You refused" in page.locator("h1").inner_text()

        # Consent to face analysis only, in English.
        page.goto(url + "?lang=en")
        page.get_by_label("Face analysis").check()
        page.get_by_role("button", name="I consent").click()
        # Consent to face analysis leads to the camera page (camera off), which thanks and links "my data".
        page.wait_for_url("**/capture/**")
        assert "Thank you" in page.locator("[role=status]").first.inner_text()
        link = page.get_by_role("link", name="My data", exact=True).get_attribute("href").split("?")[0]
        assert link == f"/c/{campaign.public_id}/my-data/"
        page.goto(live_server.url + link)  # leads to the personal link, the one to bookmark
        seen["my_data"] = page.url.split("?")[0]
        assert seen["my_data"].startswith(f"{live_server.url}/consent/my-data/")

        # Open the personal link afresh, as a bookmark would (the browser speaks German), and withdraw with
        # one click.
        page.goto(seen["my_data"])
        assert page.locator("h1").inner_text() == "Meine Daten"
        assert page.locator("td[data-state=active]").count() == 1
        page.get_by_role("button", name="„Gesichtsanalyse“ widerrufen").click()
        assert "Widerrufen" in page.locator("[role=status]").first.inner_text()
        assert page.locator("td[data-state=withdrawn]").count() == 1
        browser.close()

    refused = LedgerEntry.objects.get(organization=organization, event="refused", subject_ref="")
    assert refused.notice_hash == en.text_hash and refused.context_ref == campaign.context_ref
    granted = LedgerEntry.objects.get(organization=organization, event="granted")
    assert granted.notice_hash == en.text_hash and granted.purposes == "face_analysis"
    assert LedgerEntry.objects.filter(organization=organization, event="shown").count() == 3
    subject = Subject.objects.get(organization=organization)
    grant = Grant.objects.get(subject=subject)
    assert grant.notice_hash == en.text_hash and grant.language == "en" and grant.end_reason == "withdrawn"
    with pytest.raises(ConsentDenied) as denied:
        require_consent(organization_id=organization.pk, subject_id=subject.pk, purpose="face_analysis")
    assert denied.value.reason == DenialReason.WITHDRAWN
    assert ledger_verify(organization=organization).ok


def test_consent_page_marks_needed_and_optional_purposes_in_a_real_browser(live_server, ledger_flushable) -> None:
    """The camera's purposes are marked as needed, the extras as optional, all unticked, with equal-weight
    buttons; ticking only an extra is a refusal, and the needed one alone opens the camera page."""
    organization = make_organization(name="Browser Extras")
    make_notice(organization, language="en", purposes=PURPOSES)
    campaign = make_campaign(organization, purposes=PURPOSES[:1], optional=PURPOSES[1:])
    url = f"{live_server.url}/c/{campaign.public_id}/?lang=en"
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        needed = page.locator(".purpose[data-required=true]")
        extra = page.locator(".purpose[data-required=false]")
        assert needed.count() == 1 and extra.count() == 1
        assert "needed for the camera" in needed.inner_text() and "Face analysis" in needed.inner_text()
        assert "optional" in extra.inner_text() and "Personalization" in extra.inner_text()
        # The mark is read out with the box (aria-describedby), and neither box is ticked.
        described = page.get_by_label("Face analysis").get_attribute("aria-describedby")
        assert "purpose-face_analysis-need" in described
        assert not page.get_by_label("Face analysis").is_checked()
        assert not page.get_by_label("Personalization from face features").is_checked()
        consent, refuse = page.get_by_role("button", name="I consent"), page.get_by_role("button", name="I refuse")
        assert consent.evaluate("b => getComputedStyle(b).fontWeight") == refuse.evaluate(
            "b => getComputedStyle(b).fontWeight"
        )
        assert abs(consent.bounding_box()["width"] - refuse.bounding_box()["width"]) < 2

        # Only the extra: that is no consent to what the camera needs, so it is a refusal.
        page.get_by_label("Personalization from face features").check()
        consent.click()
        assert "You refused" in page.locator("h1").inner_text()

        # The needed purpose alone: the camera page (the extra is not needed).
        page.goto(url)
        page.get_by_label("Face analysis").check()
        page.get_by_role("button", name="I consent").click()
        page.wait_for_url("**/capture/**")
        assert page.get_by_role("button", name="Start camera").is_visible()
        browser.close()

    refusal = LedgerEntry.objects.get(organization=organization, event="refused", subject_ref="")
    assert refusal.purposes == "face_analysis,personalization"  # both refused, though the extra was ticked
    granted = LedgerEntry.objects.get(organization=organization, event="granted")
    assert granted.purposes == "face_analysis"
