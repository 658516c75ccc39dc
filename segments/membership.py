"""The hook through which personalization rules ask about segments (`{"field": "segment", "op": "in", ...}`):
which segment keys an organization has, and which ones a subject is in now. Both are organization-scoped and
consent-aware: a face-based segment counts a subject only while face-analysis and personalization consent are
live (segments.selectors.open_members)."""

from __future__ import annotations

from collections.abc import Iterable

from segments.models import Segment, SegmentMembership
from segments.selectors import open_members


def segment_keys_known(
    *, organization_id: int, keys: Iterable[str], emotion_allowed: bool = True,
) -> frozenset[str]:
    """Which of `keys` name a segment of the organization; with `emotion_allowed` False, not one whose definition
    reads expressions or smiles (a campaign where emotion recognition is forbidden may not target on it)."""
    segments = Segment.objects.filter(organization_id=organization_id, key__in=list(keys))
    if not emotion_allowed:
        segments = segments.filter(emotion_based=False)
    return frozenset(segments.values_list("key", flat=True))


def subject_segment_keys(*, organization_id: int, subject_id: int) -> frozenset[str]:
    """The keys of the organization's segments the subject is a member of now."""
    member_of = open_members(
        organization_id=organization_id,
        keys=Segment.objects.filter(organization_id=organization_id).values_list("key", flat=True),
        subject_id=subject_id,
    )
    return frozenset(
        SegmentMembership.objects.filter(
            organization_id=organization_id, subject_id=subject_id, exited_at__isnull=True,
            subject_id__in=member_of,
        ).values_list("segment__key", flat=True)
    )
