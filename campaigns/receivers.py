"""Campaigns' part of the demo: a running campaign whose consent page works out of the box, with variants and
rules a demo partner page (static/visage/demo/shop.html) shows."""

import sys
from typing import Any

from django.db import transaction
from django.templatetags.static import static
from django.urls import reverse

from accounts.demo import DEFAULT_DEMO_ADDR, demo_base_url
from accounts.models import Organization
from campaigns.content import rule_save, variant_save
from campaigns.models import Campaign
from consent.models import Purpose
from consent.receivers import DEMO_PURPOSES

DEMO_CAMPAIGN_NAME = "Demo spring campaign"
DEMO_VARIANTS = (
    {"key": "standard", "name": "Standard", "is_default": True, "headline": "Spring sale: 20 % off",
     "body": "Our spring collection, now at a fifth off.", "cta_text": "Shop the sale"},
    {"key": "smile", "name": "For smilers", "headline": "That smile deserves a treat: 30 % off",
     "body": "You look happy; here is our most playful offer.", "cta_text": "Claim the treat"},
    {"key": "welcome-back", "name": "Welcome back", "headline": "Welcome back: your 20 % are still waiting",
     "body": "Pick up where you left off.", "cta_text": "Continue shopping"},
)
# Tried in this order: the face rule first (needs consent to face analysis and personalization and fresh frames),
# then one on the request alone, which is what a visitor without that consent can get.
DEMO_RULES = (
    {"name": "Smilers", "priority": 10, "variant": "smile",
     "condition": {"all": [{"field": "face.smile_share", "op": "gte", "value": 0.3, "window_seconds": 600,
                            "min_frames": 3}]}},
    {"name": "Returning visitors", "priority": 20, "variant": "welcome-back",
     "condition": {"field": "request.returning", "op": "eq", "value": True}},
)


def seed_demo_campaign(
    sender: Any, organization: Organization, base_url: str = demo_base_url(DEFAULT_DEMO_ADDR), **kwargs: Any
) -> None:
    """Idempotent: one running demo campaign whose camera needs face analysis, with personalization offered as an
    optional extra (the demo notice covers both), three variants, two rules and a running A/B test with two weeks
    of simulated visitors (campaigns.demo); prints its consent page URL and its demo partner page on the demo's
    address (`base_url`)."""
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
    origin = base_url.rstrip("/")
    if origin not in campaign.allowed_origin_list:  # the demo partner page is served by Visage itself
        campaign.allowed_origins = "\n".join([*campaign.allowed_origin_list, origin])
        campaign.save(update_fields=["allowed_origins"])
    if not campaign.variants.exists():
        with transaction.atomic():
            for variant in DEMO_VARIANTS:
                variant_save(campaign=campaign, variant=None, data=dict(variant))
            for rule in DEMO_RULES:
                rule_save(campaign=campaign, rule=None, data=dict(rule))
    from campaigns.demo import seed_demo_experiment, seed_demo_segments

    seed_demo_experiment(campaign)
    seed_demo_segments(organization)
    path = reverse("campaigns:consent-page", kwargs={"public_id": campaign.public_id})
    sys.stdout.write(f"  Consent page: {origin}{path}\n")
    sys.stdout.write(f"  Demo partner page: {origin}{static('visage/demo/shop.html')}?campaign={campaign.public_id}\n")
    report = reverse("admin:campaigns_campaign_report", args=[campaign.pk])
    sys.stdout.write(f"  Experiment report (log in first): {origin}{report}\n")


def campaign_plan_stale(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A campaign, rule or variant was saved or deleted: decisions load the campaign's plan again."""
    from campaigns.decisions import campaign_plan_changed

    campaign_id = instance.pk if isinstance(instance, Campaign) else getattr(instance, "campaign_id", None)
    if campaign_id is not None:
        campaign_plan_changed(campaign_id=campaign_id)
