"""Deleting what was derived from faces: at once when consent to face analysis ends, and on schedule when
an organization's retention period has passed. Each writes a receipt (counts, never content) to the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from consent.models import Subject
from consent.selectors import feature_retention_days
from consent.services import purge_receipt_record
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.services.worker import _discard_quietly, _mark


def subject_face_data_purge(
    *, organization_id: int, subject_id: int, reason: str = "consent_withdrawn"
) -> dict[str, int]:
    """Consent to face analysis ended: pending frames are dropped (store keys deleted), derived features and
    face contexts are purged, open sessions are ended. Idempotent."""
    now = timezone.now()
    with transaction.atomic():
        # The subject's sessions first, in id order, as a recount takes its session before the face context:
        # deleting the contexts first and then waiting for a session a recount holds would deadlock with it.
        list(
            CaptureSession.objects.select_for_update(no_key=True)
            .filter(organization_id=organization_id, subject_id=subject_id).order_by("pk").values_list("pk", flat=True)
        )
        pending = list(
            Frame.objects.filter(organization_id=organization_id, subject_id=subject_id, status=Frame.Status.QUEUED)
            .values_list("pk", flat=True)
        )
        dropped = 0
        for start in range(0, len(pending), 1000):
            dropped += _mark(pending[start : start + 1000], Frame.Status.DROPPED, reason)
        features, _ = FrameFeatures.objects.filter(organization_id=organization_id, subject_id=subject_id).delete()
        contexts, _ = FaceContext.objects.filter(organization_id=organization_id, subject_id=subject_id).delete()
        ended = CaptureSession.objects.filter(
            organization_id=organization_id, subject_id=subject_id, ended_at__isnull=True
        ).update(ended_at=now, end_reason=CaptureSession.EndReason.CONSENT_WITHDRAWN)
        CaptureSession.objects.filter(organization_id=organization_id, subject_id=subject_id).update(
            aggregates={}, aggregates_updated_at=now
        )
        counts = {"frames_dropped": dropped, "features_purged": features, "contexts_purged": contexts,
                  "sessions_ended": ended}
        subject = Subject.objects.filter(organization_id=organization_id, pk=subject_id).first()
        if subject is not None:
            purge_receipt_record(organization=subject.organization, subject=subject, reason=reason, counts=counts)
    _discard_quietly(pending)
    return counts


def face_features_retention_purge(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Delete what was derived from faces once the organization's retention period has passed (BIPA: the
    public schedule is kept), and write a receipt to the ledger for each organization that had any."""
    now = now or timezone.now()
    purged: dict[int, dict[str, int]] = {}
    for organization in Organization.objects.all().iterator():
        cutoff = now - timedelta(days=feature_retention_days(organization=organization))
        with transaction.atomic():
            features, _ = FrameFeatures.objects.filter(organization=organization, analyzed_at__lt=cutoff).delete()
            contexts, _ = FaceContext.objects.filter(organization=organization, updated_at__lt=cutoff).delete()
            # A purged session keeps aggregates_updated_at NULL, so the next sweep does not count it again.
            sessions = CaptureSession.objects.filter(
                organization=organization, started_at__lt=cutoff, aggregates_updated_at__isnull=False
            ).update(aggregates={}, aggregates_updated_at=None)
            counts = {"features_purged": features, "contexts_purged": contexts, "session_aggregates_purged": sessions}
            if any(counts.values()):
                purge_receipt_record(organization=organization, reason="retention_period_ended", counts=counts)
                purged[organization.pk] = counts
    return purged
