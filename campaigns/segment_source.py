"""What campaigns gives segments to read (segments.sources): its events, for behaviour conditions, and which
campaign ids an organization has, for a condition that names one."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from campaigns.models import Campaign, Event
from segments.sources import BehaviourSource


def organization_events(organization_id: int) -> QuerySet[Event]:
    return Event.objects.filter(organization_id=organization_id)


def campaigns_known(organization_id: int, ids: Iterable[int]) -> frozenset[int]:
    return frozenset(Campaign.objects.filter(organization_id=organization_id, pk__in=list(ids))
                     .values_list("pk", flat=True))


BEHAVIOUR_SOURCE = BehaviourSource(events=organization_events, campaigns_known=campaigns_known)
