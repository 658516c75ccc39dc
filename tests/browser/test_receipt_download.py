"""In headless Chromium: the visitor's "my data" page downloads a signed consent receipt per grant, and the file
verifies with the verify command against the organization's published keys, fetched over HTTP."""

from __future__ import annotations

import pytest

from consent.services import consent_give_on_page
from tests.browser.receipts import download_receipt_and_verify, verify_receipt_file
from tests.browser_support import open_counting_page
from tests.factories import make_notice, make_organization

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

PURPOSES = ("face_analysis", "personalization")


def test_my_data_downloads_a_receipt_that_the_command_verifies(live_server, ledger_flushable, tmp_path) -> None:
    organization = make_organization(name="Receipt Shop")
    notice = make_notice(organization, purposes=PURPOSES)
    subject, token = consent_give_on_page(
        organization=organization, notice=notice, purposes=PURPOSES, offered_purposes=PURPOSES, context_ref="web"
    )
    grant = subject.grants.get(purpose="personalization")
    jwks = f"{live_server.url}/consent/o/{organization.slug}/receipts/jwks.json"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, context, page = open_counting_page(playwright, camera_video=None)
        page.goto(f"{live_server.url}/consent/my-data/{token}/?lang=en")
        assert page.get_by_role("link", name="Download receipt").count() == len(PURPOSES)
        receipt = download_receipt_and_verify(page, directory=tmp_path, jwks=jwks, grant_id=grant.pk)
        assert page.locator("h1").inner_text() == "My data"  # a download, not a navigation
        browser.close()

    assert receipt.filename == f"consent-receipt-{grant.pk}.jws"
    assert receipt.returncode == 0, receipt.output
    assert receipt.output.strip().splitlines()[-1] == "valid"
    assert str(subject.public_id) in receipt.output and "Personalization from face features" in receipt.output
    # The same file, changed by one character of its payload, no longer verifies.
    text = receipt.path.read_text()
    head, payload, signature = text.split(".")
    i = len(payload) // 2
    tampered = tmp_path / "tampered.jws"
    tampered.write_text(f"{head}.{payload[:i]}{'A' if payload[i] != 'A' else 'B'}{payload[i + 1:]}.{signature}")
    code, output = verify_receipt_file(tampered, jwks=jwks)
    assert code == 1 and "invalid (" in output
