"""Campaigns' part of the demo: an active campaign whose consent page works out of the box."""

import sys
from typing import Any

from django.urls import reverse

from accounts.demo import DEFAULT_DEMO_ADDR, demo_base_url
from accounts.models import Organization
from campaigns.models import Campaign
from consent.models import Purpose
from consent.receivers import DEMO_PURPOSES

DEMO_CAMPAIGN_NAME = "Demo spring campaign"


def seed_demo_campaign(
    sender: Any, organization: Organization, base_url: str = demo_base_url(DEFAULT_DEMO_ADDR), **kwargs: Any
) -> None:
    """Idempotent: one active demo campaign whose camera needs face analysis, with personalization offered as an
    optional extra (the demo notice covers both); prints its consent page URL on the demo's address (`base_url`)."""
    campaign = Campaign.objects.filter(organization=organization, name=DEMO_CAMPAIGN_NAME).first()
    if campaign is None:
        campaign = Campaign(
            organization=organization,
            name=DEMO_CAMPAIGN_NAME,
            required_purposes=Purpose.FACE_ANALYSIS,
            optional_purposes=",".join(p for p in DEMO_PURPOSES if p != Purpose.FACE_ANALYSIS),
            status=Campaign.Status.RUNNING,
        )
        campaign.full_clean()
        campaign.save()
    path = reverse("campaigns:consent-page", kwargs={"public_id": campaign.public_id})
    sys.stdout.write(f"  Consent page: {base_url.rstrip('/')}{path}\n")


def campaign_plan_stale(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A campaign, rule or variant was saved or deleted: decisions load the campaign's plan again."""
    from campaigns.decisions import campaign_plan_changed

    campaign_id = instance.pk if isinstance(instance, Campaign) else getattr(instance, "campaign_id", None)
    if campaign_id is not None:
        campaign_plan_changed(campaign_id=campaign_id)
