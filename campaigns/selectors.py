"""Reads of the campaigns app."""

from django.db.models import QuerySet

from accounts.models import Organization
from campaigns.models import Campaign


def campaign_list(*, organization: Organization | None) -> QuerySet[Campaign]:
    """The organization's campaigns, newest first."""
    return Campaign.objects.for_organization(organization)


def campaign_get_public(*, public_id: str) -> Campaign | None:
    """An active campaign by its public id (the id is the only key a visitor has)."""
    return (
        Campaign.objects.select_related("organization")
        .filter(public_id=public_id, status=Campaign.Status.ACTIVE)
        .first()
    )
