"""Reads of segments, each scoped to one organization (none: no rows). Membership is read through
`open_members`, which applies the consent a face-based segment needs, so a subject whose face-analysis or
personalization consent ended is out of every such segment at once, before the purge has cut the rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from consent.guards import live_consent_subjects
from consent.models import Purpose
from segments.conditions import FACE_PURPOSES
from segments.models import Segment, SegmentMembership, SegmentRun


def segment_list(*, organization_id: int | None) -> QuerySet[Segment]:
    return Segment.objects.filter(organization_id=organization_id) if organization_id else Segment.objects.none()


def segment_get(*, organization_id: int | None, key: str) -> Segment | None:
    return segment_list(organization_id=organization_id).filter(key=key).first()


def open_members(
    *, organization_id: int | None, keys: Iterable[str], now: datetime | None = None, subject_id: int | None = None,
) -> QuerySet:
    """The subject ids (a `values` queryset to join) that are members now of any of the segments `keys`, with
    live face-analysis and personalization consent where the segment is face-based."""
    if not organization_id:
        return SegmentMembership.objects.none().values("subject_id")
    rows = SegmentMembership.objects.filter(
        organization_id=organization_id, segment__organization_id=organization_id, segment__key__in=list(keys),
        exited_at__isnull=True, subject_id__isnull=False,
    )
    if subject_id is not None:
        rows = rows.filter(subject_id=subject_id)
    live = live_consent_subjects(organization_id=organization_id, purposes=FACE_PURPOSES, at=now or timezone.now())
    rows = rows.filter(Q(segment__face_based=False) | Q(subject_id__in=live.values("pk")))
    return rows.order_by().values("subject_id")


def segment_members(*, segment: Segment, now: datetime | None = None) -> QuerySet[SegmentMembership]:
    """The open memberships of `segment` that count now (see `open_members`), newest entry first."""
    ids = open_members(organization_id=segment.organization_id, keys=[segment.key], now=now)
    return (
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True, subject_id__in=ids)
        .select_related("subject").order_by("-entered_at", "-pk")
    )


def segment_shareable_members(*, segment: Segment, now: datetime | None = None) -> QuerySet[SegmentMembership]:
    """The members whose partner-sharing consent is live: the only ones an export may name."""
    sharing = live_consent_subjects(
        organization_id=segment.organization_id, purposes=[Purpose.PARTNER_SHARING], at=now or timezone.now(),
    )
    return segment_members(segment=segment, now=now).filter(subject_id__in=sharing.values("pk"))


def segment_size_at(*, segment: Segment, at: datetime) -> int:
    """How many stretches of membership were open at `at` (entered at or before it, not yet exited)."""
    return SegmentMembership.objects.filter(segment=segment, entered_at__lte=at).filter(
        Q(exited_at__isnull=True) | Q(exited_at__gt=at)
    ).count()


def segment_size_history(*, segment: Segment, since: datetime | None = None) -> list[dict]:
    """The size after each run, oldest first, with how many entered and left: the size-over-time chart."""
    runs = SegmentRun.objects.filter(segment=segment)
    if since is not None:
        runs = runs.filter(started_at__gte=since)
    return [
        {"at": run.started_at, "size": run.size, "entered": run.entered, "exited": run.exited, "kind": run.kind}
        for run in runs.order_by("started_at", "pk")
    ]


def segment_changes_since(*, segment: Segment, since: datetime) -> dict[str, int]:
    """How many entered and how many left since `since` ("who entered since yesterday")."""
    rows = SegmentMembership.objects.filter(segment=segment)
    return rows.aggregate(
        entered=Count("pk", filter=Q(entered_at__gt=since)), exited=Count("pk", filter=Q(exited_at__gt=since)),
    )
