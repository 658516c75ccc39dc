"""Campaigns in the admin: activation refused while visitors could not see the consent page (naming what is
missing), readiness on the change page and in the list, and a preview of the consent page that records nothing."""

import re

import pytest
from django.test import Client

from campaigns.models import Campaign
from consent import derived
from consent.models import Grant, LedgerEntry, RetentionPolicy, Subject
from consent.selectors import consent_funnel
from consent.services import notice_retire
from tests.factories import campaign_admin_form, make_campaign, make_member, make_notice, make_retention_policy

pytestmark = pytest.mark.django_db

PURPOSES = ("face_analysis", "personalization")
# What the add form ticks by default: every optional attribute, as the factories' notices name them all.
ATTRIBUTES = list(derived.OPTIONAL_KEYS)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _add(client: Client, status: str = "running", purposes=PURPOSES, **extra):
    data = campaign_admin_form(name="Spring", status=status, purpose_choices=list(purposes),
                               attribute_choices=ATTRIBUTES, **extra)
    return client.post("/admin/campaigns/campaign/add/", data)


def _errors(response) -> str:
    return " ".join(str(e) for e in response.context["adminform"].form.errors.get("status", []))


def test_activation_is_refused_naming_the_missing_retention_policy_and_notice(org_a, marketer_a) -> None:
    response = _add(_client(marketer_a))
    assert response.status_code == 200 and not Campaign.objects.exists()
    errors = _errors(response)
    assert "cannot be running or scheduled yet" in errors and "no retention policy" in errors
    assert "No published notice for exactly these purposes" in errors
    assert "Face analysis, Personalization from face features" in errors


@pytest.mark.parametrize("lacking", ["notice_for_the_set", "retired_notice", "retention_policy"])
def test_activation_is_refused_for_each_missing_piece_alone(org_a, marketer_a, lacking) -> None:
    if lacking == "notice_for_the_set":
        make_notice(org_a, purposes=("face_analysis",))  # covers one purpose, not the campaign's set
    elif lacking == "retired_notice":
        notice_retire(notice=make_notice(org_a, purposes=PURPOSES))
    else:
        make_notice(org_a, purposes=PURPOSES)
        RetentionPolicy.objects.filter(organization=org_a).delete()
    response = _add(_client(marketer_a))
    assert response.status_code == 200 and not Campaign.objects.exists()
    expected = "no retention policy" if lacking == "retention_policy" else "No published notice"
    assert expected in _errors(response)


def test_a_draft_may_be_saved_unready_and_activated_once_ready(org_a, marketer_a) -> None:
    client = _client(marketer_a)
    assert _add(client, status="draft").status_code == 302
    campaign = Campaign.objects.get()
    change = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    data = campaign_admin_form(name="Spring", status="running", purpose_choices=list(PURPOSES),
                               attribute_choices=ATTRIBUTES)
    refused = client.post(change, data)
    assert refused.status_code == 200 and "No published notice" in _errors(refused)
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    make_notice(org_a, language="en", purposes=PURPOSES)
    assert client.post(change, data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_operator_activation_is_checked_against_the_chosen_organization(org_a, org_b) -> None:
    from django.contrib.auth import get_user_model

    make_notice(org_a, purposes=PURPOSES)
    operator = get_user_model().objects.create_superuser("operator", password="pw-123456!")
    refused = _add(_client(operator), organization=org_b.pk)
    assert refused.status_code == 200 and "no retention policy" in _errors(refused)
    assert _add(_client(operator), organization=org_a.pk).status_code == 302


def test_change_page_and_list_say_what_an_active_campaign_lacks(org_a, marketer_a) -> None:
    notice = make_notice(org_a, language="en", purposes=PURPOSES)
    campaign = make_campaign(org_a, purposes=PURPOSES)
    client = _client(marketer_a)
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Ready: visitors can see the consent page." in page
    assert "No published notice in German" in page  # a warning: German visitors get the English notice
    assert f"/admin/campaigns/campaign/{campaign.pk}/preview/" in page
    notice_retire(notice=notice)  # after activation, the notice is withdrawn
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "Not ready. Missing:" in page and "This campaign is running, but visitors see" in page
    listing = client.get("/admin/campaigns/campaign/").content.decode()
    assert "Not ready: No published notice for exactly these purposes" in listing


def test_preview_of_a_draft_renders_the_consent_page_and_records_nothing(org_a, marketer_a) -> None:
    en = make_notice(org_a, language="en", purposes=PURPOSES)
    de = make_notice(org_a, language="de", purposes=PURPOSES)
    campaign = make_campaign(org_a, purposes=PURPOSES, status="draft")
    client = _client(marketer_a)
    url = f"/admin/campaigns/campaign/{campaign.pk}/preview/"
    response = client.get(url + "?lang=en")
    html = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "Preview: nothing is recorded." in html and en.text_hash in html
    assert "Draft" in html and "May we analyse your face" in html
    form = re.search(r"<form[^>]*>", html).group(0)
    assert 'method="post"' not in form and "csrfmiddlewaretoken" not in html
    assert re.search(r'<fieldset class="preview-lock" disabled>', html)
    assert de.text_hash in client.get(url + "?lang=de").content.decode()
    assert client.post(url, {"action": "consent", "purposes": list(PURPOSES)}).status_code == 405
    assert not LedgerEntry.objects.exists() and not Subject.objects.exists() and not Grant.objects.exists()
    assert consent_funnel(organization=org_a) == []
    assert "visage_visitor" not in response.cookies
    # The visitors' page of that draft is still "not available".
    assert Client().get(f"/c/{campaign.public_id}/").status_code == 404


def test_preview_of_a_campaign_without_a_notice_lists_what_is_missing(org_a, marketer_a) -> None:
    make_retention_policy(org_a)
    campaign = make_campaign(org_a, purposes=PURPOSES, status="draft")
    response = _client(marketer_a).get(f"/admin/campaigns/campaign/{campaign.pk}/preview/")
    html = response.content.decode()
    assert response.status_code == 200 and "Preview: nothing is recorded." in html
    assert "cannot be shown to visitors yet" in html and "No published notice for exactly these purposes" in html
    assert not LedgerEntry.objects.exists()


def test_preview_is_for_members_of_the_campaigns_organization_only(org_a, org_b) -> None:
    make_notice(org_a, purposes=PURPOSES)
    campaign = make_campaign(org_a, purposes=PURPOSES, status="draft")
    url = f"/admin/campaigns/campaign/{campaign.pk}/preview/"
    assert _client(make_member(org_b, role="owner")).get(url).status_code == 404  # as for a missing one
    assert _client(make_member(org_a, role="read_only")).get(url).status_code == 200
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert _client(make_member(org_a)).get("/admin/campaigns/campaign/999999/preview/").status_code == 404
    assert not LedgerEntry.objects.exists()
