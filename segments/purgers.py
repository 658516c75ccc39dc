"""Segments' purger (consent.purging): what a withdrawal or an erasure owes of segment memberships.

A membership holds no feature value, but membership of a face-based segment ("smiled at the spring video") is
an inference from that person's face. So:

- Withdrawal (or expiry) of face analysis or personalization: every membership of the subject in a face-based
  segment ends now (exit reason consent_ended) and every such stretch, open or past, is cut loose (subject =
  NULL). The stretches stay, anonymous, so the size history stays true. Memberships of segments without a face
  condition stay: they rest on behaviour and consent, not on the face.
- Erasure: the same for every segment, and the record of which audience exports named the subject is deleted
  (each export's ledger entry keeps its counts).
- Retention (category "memberships"): an ended stretch whose exit is older than the period is deleted, and so
  is the record that an export named a subject, by the export's time. Open memberships are current (the
  segment's definition keeps them true), so they stay.

Reads meet the same rule before the purge has run: `segments.selectors.open_members` counts a face-based
segment's member only while both consents are live. Idempotent: a second run finds no row pointing at the
subject.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from consent.data_export import export_rows
from consent.models import Purpose
from consent.purging import ExportRow, PurgeOrder, Purger, RetentionTarget
from segments.models import AudienceExportRecipient, SegmentMembership


def memberships_purge(order: PurgeOrder) -> dict[str, int]:
    """End and cut the subject's memberships (face-based segments only, unless the subject is erased)."""
    if order.subject_id is None:
        return {}
    rows = SegmentMembership.objects.filter(organization_id=order.organization_id, subject_id=order.subject_id)
    reason = SegmentMembership.ExitReason.CONSENT_ENDED
    if order.erasure:
        reason = SegmentMembership.ExitReason.ERASED
    else:
        rows = rows.filter(segment__face_based=True)
    ended = rows.filter(exited_at__isnull=True).update(exited_at=timezone.now(), exit_reason=reason)
    cut = rows.update(subject=None)
    counts = {"memberships_ended": ended, "memberships_unlinked": cut}
    if order.erasure:  # which exports named the subject: the ledger keeps each export's counts
        counts["export_recipients_deleted"], _ = AudienceExportRecipient.objects.filter(
            organization_id=order.organization_id, subject_id=order.subject_id).delete()
    return counts


def memberships_export(organization_id: int, subject_id: int) -> Iterator[ExportRow]:
    """The subject's membership stretches, with the segment's key and name, and the audience exports that named it."""
    scope = {"organization_id": organization_id, "subject_id": subject_id}
    yield from export_rows("segments.SegmentMembership", SegmentMembership.objects.filter(**scope),
                           extra=("segment__key", "segment__name"))
    yield from export_rows("segments.AudienceExportRecipient", AudienceExportRecipient.objects.filter(**scope))


def _ended_memberships_expired(organization_id: int, before: datetime) -> QuerySet:
    return SegmentMembership.objects.filter(organization_id=organization_id, exited_at__lt=before)


def _export_recipients_expired(organization_id: int, before: datetime) -> QuerySet:
    return AudienceExportRecipient.objects.filter(organization_id=organization_id, exported_at__lt=before)


SEGMENT_MEMBERSHIP_PURGER = Purger(
    name="segments.membership",
    models=("segments.SegmentMembership", "segments.AudienceExportRecipient"),
    purge=memberships_purge,
    purposes=frozenset({Purpose.FACE_ANALYSIS.value, Purpose.PERSONALIZATION.value}),
    retention=(
        RetentionTarget("memberships", "segments.SegmentMembership", _ended_memberships_expired, "exited_at"),
        RetentionTarget("memberships", "segments.AudienceExportRecipient", _export_recipients_expired,
                        "exported_at"),
    ),
    export=memberships_export,
)
