"""The campaign admin answers bad input with form errors, whatever fields the user's role is shown."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from campaigns.models import Campaign
from tests.factories import campaign_admin_form, make_campaign, make_member

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/campaigns/campaign/add/"


def _client_for(org, role: str) -> Client:
    client = Client()
    if role == "superuser":
        client.force_login(get_user_model().objects.create_superuser("root", "root@example.test", "pw-123456!"))
    else:
        client.force_login(make_member(org, role=role))
    return client


@pytest.mark.parametrize("role", ["marketer", "owner", "superuser"])
def test_adding_a_campaign_without_a_purpose_is_a_form_error(org_a, role: str) -> None:
    client = _client_for(org_a, role)
    body = {"name": "No purposes", "status": "draft"}
    if role == "superuser":
        body["organization"] = org_a.pk
    response = client.post(ADD_URL, campaign_admin_form(**body))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "purpose_choices" in form.errors
    assert not Campaign.objects.filter(name="No purposes").exists()


@pytest.mark.parametrize("role", ["marketer", "owner", "superuser"])
def test_model_errors_on_fields_the_form_lacks_are_shown_not_raised(org_a, role: str, monkeypatch) -> None:
    """A model check naming a field the role's form does not show lands at the top of the form."""
    from django.core.exceptions import ValidationError

    def clean(self: Campaign) -> None:
        raise ValidationError({"public_id": "Taken.", "created_at": "Too late."})

    monkeypatch.setattr(Campaign, "clean", clean)
    client = _client_for(org_a, role)
    body = {"name": "Hidden field", "status": "draft", "purpose_choices": ["face_analysis"]}
    if role == "superuser":
        body["organization"] = org_a.pk
    response = client.post(ADD_URL, campaign_admin_form(**body))
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert any("Taken." in e for e in errors) and any("Too late." in e for e in errors)
    assert not Campaign.objects.filter(name="Hidden field").exists()


def test_adding_a_campaign_with_purposes_stores_them_for_the_members_organization(org_a) -> None:
    client = _client_for(org_a, "marketer")
    response = client.post(
        ADD_URL,
        campaign_admin_form(name="Spring", status="draft", purpose_choices=["personalization", "face_analysis"]),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Spring")
    assert campaign.organization == org_a
    assert campaign.required_purposes == "face_analysis,personalization"


def test_unticking_every_purpose_of_an_existing_campaign_is_a_form_error(org_a) -> None:
    campaign = make_campaign(org_a)
    client = _client_for(org_a, "marketer")
    response = client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/change/", campaign_admin_form(name=campaign.name, status="running")
    )
    assert response.status_code == 200
    assert "purpose_choices" in response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.required_purposes == "face_analysis"


def test_a_members_add_form_is_validated_against_their_organization(org_a, monkeypatch) -> None:
    """The organization is not on a member's add form, yet the model's checks may read it."""
    from django.core.exceptions import ValidationError

    def clean(self: Campaign) -> None:
        raise ValidationError({"organization": f"{self.organization.name} has too many campaigns."})

    monkeypatch.setattr(Campaign, "clean", clean)
    response = _client_for(org_a, "marketer").post(
        ADD_URL, campaign_admin_form(name="Over quota", status="draft", purpose_choices=["face_analysis"])
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert f"Organization: {org_a.name} has too many campaigns." in errors
    assert not Campaign.objects.filter(name="Over quota").exists()


def test_a_campaign_whose_camera_would_not_need_face_analysis_is_a_form_error(org_a) -> None:
    """The camera always needs face analysis: it cannot be optional or left out of the needed purposes."""
    client = _client_for(org_a, "marketer")
    body = {"name": "No face", "status": "draft", "purpose_choices": ["personalization"],
            "optional_purpose_choices": ["face_analysis"]}
    response = client.post(ADD_URL, campaign_admin_form(**body))
    assert response.status_code == 200
    assert "face analysis" in " ".join(response.context["adminform"].form.errors.get("purpose_choices", []))
    assert not Campaign.objects.filter(name="No face").exists()
