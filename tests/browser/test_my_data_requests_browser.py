"""The "my data" page's data subject requests in headless Chromium: the page shows the grants and what is kept,
downloads the export (a JSON file that names the subject) and a grant's signed consent receipt (verified by
`manage.py consent_receipt_verify` against the published keys), erases everything after a confirmation step,
and afterwards the personal link is a dead link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consent.models import DataRequest, Grant, Subject
from consent.services import consent_give_on_page
from tests.browser.receipts import download_receipt_and_verify
from tests.browser_support import open_counting_page, screenshot
from tests.factories import make_notice, make_organization, make_retention_policy

pytestmark = [pytest.mark.browser]

PURPOSES = ("face_analysis", "personalization")


def test_my_data_downloads_the_export_and_a_receipt_and_erases_everything_after_confirmation(
    live_server, ledger_flushable, eager, tmp_path: Path
) -> None:
    organization = make_organization(name="Rights Shop")
    make_retention_policy(organization)
    notice = make_notice(organization, language="en", purposes=PURPOSES)
    subject, token = consent_give_on_page(
        organization=organization, notice=notice, purposes=PURPOSES, offered_purposes=PURPOSES,
        context_ref="campaign:rights",
    )
    url = f"{live_server.url}/consent/my-data/{token}/?lang=en"
    grant = Grant.objects.filter(subject=subject, purpose="face_analysis").get()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        assert page.goto(url).status == 200
        grants = page.locator("td[data-state='active']")
        expect(grants).to_have_count(2)
        expect(page.locator("tr[data-category='consent.Grant'] td").nth(1)).to_have_text("2")

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download my data (JSON)").click()
        download = download_info.value
        assert download.suggested_filename.startswith("my-data-") and download.suggested_filename.endswith(".json")
        saved = tmp_path / "export.json"
        download.save_as(saved)
        document = json.loads(saved.read_text())
        assert document["subject"]["id"] == str(subject.public_id)
        assert {g["purpose"] for g in document["sections"]["consent.Grant"]} == set(PURPOSES)

        receipt = download_receipt_and_verify(
            page, directory=tmp_path / "receipts", grant_id=grant.pk,
            jwks=f"{live_server.url}/consent/o/{organization.slug}/receipts/jwks.json",
        )
        assert receipt.returncode == 0, receipt.output
        assert "valid" in receipt.output and str(subject.public_id) in receipt.output

        page.reload()
        expect(page.locator("#request-list tr[data-kind='export']")).to_have_attribute("data-state", "done")
        page.get_by_role("button", name="Erase everything").click()
        expect(page.locator("#erase-confirm")).to_be_visible()
        screenshot(page, "my-data-erase-confirm")
        page.get_by_role("button", name="Yes, erase everything").click()
        expect(page.locator("#erased")).to_be_visible()
        expect(page.locator("td[data-state]")).to_have_attribute("data-state", "done")
        assert token not in page.content()
        screenshot(page, "my-data-erased")

        response = page.goto(url)
        assert response.status == 404
        expect(page.locator("#link-invalid")).to_be_visible()
        assert page.locator("form").count() == 0
        browser.close()

    erasure = DataRequest.objects.get(subject_id=subject.pk, kind=DataRequest.Kind.ERASURE)
    assert erasure.state == DataRequest.State.DONE and erasure.requested_by == "subject"
    assert Subject.objects.get(pk=subject.pk).erased_at is not None
    assert not Grant.objects.filter(subject_id=subject.pk).exists()
