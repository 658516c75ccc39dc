"""The demo seed gives a working consent page: published EN and DE notices, a retention policy, a campaign."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from campaigns.models import Campaign
from consent.models import NoticeVersion, RetentionPolicy

pytestmark = pytest.mark.django_db


def test_seed_demo_prints_a_working_consent_page_and_is_idempotent(capsys) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    path = re.search(r"Consent page: http://127\.0\.0\.1:8000(/c/[^/\s]+/)", out).group(1)
    html = Client().get(path + "?lang=de").content.decode()
    assert "Demo Shop möchte" in html and "Ich willige ein" in html
    assert Client().get(path + "?lang=en").status_code == 200
    call_command("seed_demo")
    assert Campaign.objects.count() == 1 and RetentionPolicy.objects.count() == 1
    assert NoticeVersion.objects.filter(status="published").count() == 2
