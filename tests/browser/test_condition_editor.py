"""The rule inline's condition editor in headless Chromium: a marketer builds an `any` group of two conditions with
the rows (no JSON typed), saves, and the tree is stored as the rows said."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client

from campaigns.models import Rule, Variant
from tests.browser_support import launch_chromium, screenshot
from tests.factories import make_campaign, make_member, make_organization

pytestmark = [pytest.mark.browser]


def _browser_session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_condition_editor_adds_an_any_group_of_two_conditions_and_saves_the_tree(
    live_server, ledger_flushable
) -> None:
    org = make_organization(name="Editor Shop")
    campaign = make_campaign(org, purposes=("face_analysis", "personalization"), status="draft")
    variant = Variant.objects.create(organization=org, campaign=campaign, key="calm", name="Calm", is_default=True)
    cookie = _browser_session(make_member(org, role="marketer"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
        page.click("#rules-group .add-row a")
        rule = page.locator("#rules-0")
        rule.locator("input[name='rules-0-name']").fill("Mobile or German")
        rule.locator("select[name='rules-0-variant']").select_option(str(variant.pk))
        editor = rule.locator(".visage-cond-editor")
        editor.locator('[data-path="condition"] > .visage-cond-group-head .visage-cond-add-group').click()
        # The new rule started with one empty condition at the top; the group takes its place.
        editor.locator('[data-path="condition.all[0]"] .visage-cond-remove').first.click()
        group = '[data-path="condition.all[0]"]'
        assert editor.locator(f"{group} > .visage-cond-group-head .visage-cond-group-kind").input_value() == "any"
        first = '[data-path="condition.all[0].any[0]"]'
        editor.locator(f"{first} .visage-cond-field").select_option("request.device")
        editor.locator(f"{first} .visage-cond-value").select_option("mobile")
        editor.locator(f"{group} > .visage-cond-group-head .visage-cond-add-condition").click()
        second = '[data-path="condition.all[0].any[1]"]'
        editor.locator(f"{second} .visage-cond-field").select_option("request.language")
        value = editor.locator(f"{second} .visage-cond-value")
        value.fill("de")
        value.dispatch_event("change")
        rule.locator(".visage-cond-toggle").click()  # "Edit JSON" shows the tree the rows wrote
        shown = json.loads(rule.locator("textarea[name='rules-0-condition']").input_value())
        screenshot(page, "condition-editor")
        page.click("input[name='_continue']")
        page.wait_for_selector(".messagelist .success")
        saved_page_editor = page.locator("#rules-0 .visage-cond-row").count()
        browser.close()

    expected = {"all": [{"any": [
        {"field": "request.device", "op": "eq", "value": "mobile"},
        {"field": "request.language", "op": "eq", "value": "de"},
    ]}]}
    assert shown == expected
    stored = Rule.objects.get(campaign=campaign)
    assert stored.condition == expected and stored.name == "Mobile or German" and stored.variant == variant
    assert saved_page_editor == 2  # the saved rule's editor shows the two rows again
