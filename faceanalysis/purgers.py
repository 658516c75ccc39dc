"""Face analysis's purger (consent.purging): what a withdrawal, an expiry, an erasure or a retention run owes
of this app's tables. Idempotent: a second run finds nothing more to do. The receipt is the runner's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from consent.data_export import export_rows
from consent.models import Purpose
from consent.purging import ExportRow, PurgeOrder, Purger, RetentionTarget
from faceanalysis.face_cache import face_signals_forget
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.store import FrameStoreUnavailable, frame_store

logger = logging.getLogger(__name__)

BATCH = 1000


def _discard_after_commit(frame_ids: list[int]) -> None:
    """Pending frames' bytes go once their drop has committed (a rolled-back purge leaves them analysable by
    nobody, as the guard refuses them, and the TTL removes them)."""

    def discard() -> None:
        try:
            frame_store().discard(frame_ids)
        except FrameStoreUnavailable:
            logger.warning("frame store unavailable; %d dropped frames are left to expire", len(frame_ids))

    if frame_ids:
        transaction.on_commit(discard)


def _subject_purge(order: PurgeOrder) -> dict[str, int]:
    """Consent to face analysis ended, or the subject was erased: pending frames dropped (their bytes deleted),
    derived features and face contexts deleted, open sessions ended. An erasure deletes the sessions and frames
    too (their metadata is the subject's as well)."""
    organization_id, subject_id = order.organization_id, order.subject_id
    now = timezone.now()
    sessions = CaptureSession.objects.filter(organization_id=organization_id, subject_id=subject_id)
    # The subject's sessions first, in id order, as a recount takes its session before the face context: deleting
    # the contexts first and then waiting for a session a recount holds would deadlock with it.
    list(sessions.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))
    pending = list(
        Frame.objects.filter(organization_id=organization_id, subject_id=subject_id, status=Frame.Status.QUEUED)
        .values_list("pk", flat=True)
    )
    dropped = 0
    for start in range(0, len(pending), BATCH):
        dropped += Frame.objects.filter(pk__in=pending[start : start + BATCH], status=Frame.Status.QUEUED).update(
            status=Frame.Status.DROPPED, reason=order.reason, finished_at=now
        )
    features, _ = FrameFeatures.objects.filter(organization_id=organization_id, subject_id=subject_id).delete()
    contexts, _ = FaceContext.objects.filter(organization_id=organization_id, subject_id=subject_id).delete()
    ended = _end_open_sessions(order)["sessions_ended"]  # done at once on recording; this finds any opened since
    sessions.update(aggregates={}, aggregates_updated_at=now)
    counts = {"frames_dropped": dropped, "features_purged": features, "contexts_purged": contexts,
              "sessions_ended": ended}
    if order.erasure:
        frames, _ = Frame.objects.filter(organization_id=organization_id, subject_id=subject_id).delete()
        counts["frames_deleted"] = frames
        counts["sessions_deleted"], _ = sessions.delete()
    _discard_after_commit(pending)
    # Also after this commit: a consent given again meanwhile must not find frames cached before the purge.
    transaction.on_commit(lambda: face_signals_forget(organization_id=organization_id, subject_id=subject_id))
    return counts


def _end_open_sessions(order: PurgeOrder) -> dict[str, int]:
    """The subject's open capture sessions end: intake and every page see it from the commit on."""
    if order.subject_id is None:
        return {}
    ended = CaptureSession.objects.filter(
        organization_id=order.organization_id, subject_id=order.subject_id, ended_at__isnull=True
    ).update(ended_at=timezone.now(), end_reason=CaptureSession.EndReason.CONSENT_WITHDRAWN)
    return {"sessions_ended": ended}


def _at_once(order: PurgeOrder) -> dict[str, int]:
    """Right after a withdrawal or erasure commits: open sessions end, and the subject's cached face signals go,
    so no decision reads them while the part waits for a worker."""
    counts = _end_open_sessions(order)
    face_signals_forget(organization_id=order.organization_id, subject_id=order.subject_id)
    return counts


def face_data_purge(order: PurgeOrder) -> dict[str, int]:
    """The purger's entry: a subject's face data (a retention run deletes through `retention` instead)."""
    if order.subject_id is not None:
        return _subject_purge(order)
    return {}


def _features_expired(organization_id: int, before: datetime) -> QuerySet:
    return FrameFeatures.objects.filter(organization_id=organization_id, analyzed_at__lt=before)


# A frame's metadata (its subject, grant, session, times, size) goes at the features' period too: it says when a
# subject was filmed. Queued frames are in flight (the expiry sweep ends them within minutes). A frame takes its
# features with it (one-to-one, cascade); its target comes after the features' own, so the only features that go
# this way are those analysed after the cutoff of a frame received before it: at most the frame store's TTL early.
def _frames_expired(organization_id: int, before: datetime) -> QuerySet:
    return Frame.objects.filter(organization_id=organization_id, received_at__lt=before).exclude(
        status=Frame.Status.QUEUED
    )


def _aggregates_expired(organization_id: int, before: datetime) -> QuerySet:
    # A cut session keeps aggregates_updated_at NULL, so no later run counts it again.
    return CaptureSession.objects.filter(
        organization_id=organization_id, started_at__lt=before, aggregates_updated_at__isnull=False
    )


def _sessions_expired(organization_id: int, before: datetime) -> QuerySet:
    # An ended session with nothing left of its frames is only a record that a subject was filmed then: it goes
    # at the aggregates' period (and with it, the hold it kept on its grant as a consent record).
    return CaptureSession.objects.filter(
        organization_id=organization_id, started_at__lt=before, ended_at__isnull=False
    ).exclude(Exists(Frame.objects.filter(session=OuterRef("pk")))).exclude(
        Exists(FrameFeatures.objects.filter(session=OuterRef("pk")))
    )


def _contexts_expired(organization_id: int, before: datetime) -> QuerySet:
    return FaceContext.objects.filter(organization_id=organization_id, updated_at__lt=before)


FACE_DATA_RETENTION = (
    RetentionTarget("features", "faceanalysis.FrameFeatures", _features_expired, "analyzed_at"),
    RetentionTarget("features", "faceanalysis.Frame", _frames_expired, "received_at"),
    # An ended session with no frame left goes; one that frames of a longer features period still point at
    # stays, without its aggregates.
    RetentionTarget("aggregates", "faceanalysis.CaptureSession", _sessions_expired, "started_at"),
    RetentionTarget("aggregates", "faceanalysis.CaptureSession", _aggregates_expired, "started_at",
                    cut={"aggregates": {}, "aggregates_updated_at": None}),
    RetentionTarget("face_context", "faceanalysis.FaceContext", _contexts_expired, "updated_at"),
)


def face_data_export(organization_id: int, subject_id: int) -> Iterator[ExportRow]:
    """The subject's capture sessions (with their aggregates; not the capture token's hash), frames (metadata:
    no table holds a pixel), derived features and face contexts."""
    scope = {"organization_id": organization_id, "subject_id": subject_id}
    yield from export_rows("faceanalysis.CaptureSession", CaptureSession.objects.filter(**scope),
                           omit=("token_hash",))
    yield from export_rows("faceanalysis.Frame", Frame.objects.filter(**scope))
    yield from export_rows("faceanalysis.FrameFeatures", FrameFeatures.objects.filter(**scope))
    yield from export_rows("faceanalysis.FaceContext", FaceContext.objects.filter(**scope))


FACE_DATA_PURGER = Purger(
    name="faceanalysis.face_data",
    models=("faceanalysis.CaptureSession", "faceanalysis.Frame", "faceanalysis.FrameFeatures",
            "faceanalysis.FaceContext"),
    purge=face_data_purge,
    purposes=frozenset({Purpose.FACE_ANALYSIS.value}),
    retention=FACE_DATA_RETENTION,
    at_once=_at_once,
    export=face_data_export,
)
