"""What segments read from the apps above them, registered by those apps (`AppConfig.ready()`), since segments
may not import them (docs/architecture.md). Campaigns registers its events and which campaign ids an
organization has; without it (a project without campaigns) behaviour conditions match nothing and no campaign
id is known."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from faceanalysis.models import FrameFeatures


@dataclass(frozen=True)
class BehaviourSource:
    """`events(organization_id)`: the organization's events, with the columns subject_id, kind, name, value,
    campaign_id and received_at. `campaigns_known(organization_id, ids)`: which of `ids` are its campaigns."""

    events: Callable[[int], QuerySet]
    campaigns_known: Callable[[int, Iterable[int]], frozenset[int]]


_SOURCE: list[BehaviourSource] = []


def behaviour_source_register(source: BehaviourSource) -> None:
    """Register the source of events (registering again replaces it)."""
    _SOURCE[:] = [source]


def events(organization_id: int) -> QuerySet:
    """The organization's events (none without a registered source)."""
    if not _SOURCE:
        return FrameFeatures.objects.none()
    return _SOURCE[0].events(organization_id)


def campaigns_known(organization_id: int, ids: Iterable[int]) -> frozenset[int]:
    """Which of `ids` are campaigns of the organization (none without a registered source)."""
    wanted = list(ids)
    if not _SOURCE or not wanted:
        return frozenset()
    return _SOURCE[0].campaigns_known(organization_id, wanted)
