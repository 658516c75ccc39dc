"""Writes of face analysis: capture sessions, frame intake, analysis in the worker, and the purge that a
withdrawal of consent sets off. Frame bytes pass through here on their way to the frame store or out of it,
and are never logged, persisted or put into an exception."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from accounts.tokens import token_hash
from campaigns.models import Campaign
from config.rawsql import insert_one
from consent.guards import ConsentDenied, DenialReason, has_consent, require_consents
from consent.models import Grant, Purpose, Subject, purposes_key
from consent.selectors import feature_retention_days
from consent.services import purge_receipt_record
from faceanalysis import dispatch
from faceanalysis.errors import (
    ConsentRequired,
    FaceAnalysisError,
    FrameRateExceeded,
    FrameRejected,
    ServiceUnavailable,
    SessionEnded,
)
from faceanalysis.features import features_from
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.selectors import session_summary
from faceanalysis.store import FrameStoreUnavailable, RedisFrameStore, frame_store
from faceanalysis.validation import FrameInfo, check_body, inspect_frame, jpeg_scan_intact

logger = logging.getLogger(__name__)

CAPTURE_TOKEN_PREFIX = "vcs"  # noqa: S105 - a public prefix, not a secret


# --- Capture sessions -----------------------------------------------------------------------------------------


def _consent_required(denial: ConsentDenied) -> ConsentRequired:
    """The guard's refusal as the API's 403: its reason, and the purpose when it is not face analysis itself."""
    if denial.reason == DenialReason.NOTICE_DOES_NOT_COVER:
        message = (
            "The notice the subject consented under does not name everything this campaign derives from faces; "
            "the subject must consent again under the campaign's notice."
        )
    elif denial.purpose == Purpose.FACE_ANALYSIS:
        message = "The subject has no live consent to face analysis."
    else:
        message = f"The subject has no live consent to {denial.purpose}, which this campaign's camera needs."
    details = {"reason": denial.reason.value}
    if denial.purpose != Purpose.FACE_ANALYSIS:
        details["purpose"] = denial.purpose
    return ConsentRequired(message, details=details)


def _capture_consents(
    *, organization_id: int, subject_id: int, purposes: Iterable[str], derived_attributes: Iterable[str]
) -> dict[str, Grant]:
    """The live grant of every purpose capture needs, face analysis under a notice naming every attribute that
    will be derived (the consent guard decides); otherwise ConsentRequired with the guard's reason."""
    try:
        return require_consents(
            organization_id=organization_id, subject_id=subject_id, purposes={Purpose.FACE_ANALYSIS, *purposes},
            derived_attributes=derived_attributes,
        )
    except ConsentDenied as denial:
        raise _consent_required(denial) from None


def _session_consent(session: CaptureSession) -> Grant:
    """Consent for one more frame of a session: the campaign's required purposes and attributes at its start."""
    grants = _capture_consents(
        organization_id=session.organization_id, subject_id=session.subject_id,
        purposes=session.required_purpose_list, derived_attributes=session.derived_attribute_set,
    )
    return grants[Purpose.FACE_ANALYSIS]


def capture_session_start(
    *, organization: Organization, subject: Subject, campaign: Campaign, source: str, media_ref: str = ""
) -> tuple[CaptureSession, str]:
    """Open a capture session for a subject with live consent to every purpose the campaign's camera needs,
    under a notice naming every attribute it derives, and issue its capture token (returned once, stored
    hashed). The session keeps that choice: each frame is checked against it and derives nothing more. The
    token lets an end user's page post frames to this session only, read it and end it."""
    if subject.organization_id != organization.pk or campaign.organization_id != organization.pk:
        raise FaceAnalysisError("Not found.", code="not_found", status_code=404)
    if source not in CaptureSession.Source.values:
        raise FaceAnalysisError(f"Unknown source {source!r}.", code="invalid")
    if campaign.status == Campaign.Status.ENDED:
        raise FaceAnalysisError("The campaign has ended.", code="campaign_ended", status_code=409)
    grants = _capture_consents(
        organization_id=organization.pk, subject_id=subject.pk, purposes=campaign.capture_purposes,
        derived_attributes=campaign.derived_attribute_set,
    )
    grant = grants[Purpose.FACE_ANALYSIS]
    consented = [p for p in Purpose.values if p in grants or has_consent(
        organization_id=organization.pk, subject_id=subject.pk, purpose=p)]
    token = f"{CAPTURE_TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    session = CaptureSession.objects.create(
        organization=organization,
        subject=subject,
        campaign=campaign,
        grant=grant,
        purposes=purposes_key(consented),
        required_purposes=purposes_key(campaign.capture_purposes),
        derived_attributes=campaign.derived_attributes,
        source=source,
        media_ref=media_ref[:200],
        started_at=now,
        token_hash=token_hash(token),
        token_expires_at=now + timedelta(seconds=settings.VISAGE_CAPTURE_TOKEN_TTL_SECONDS),
    )
    return session, token


def capture_session_end(*, session: CaptureSession, reason: str = CaptureSession.EndReason.CLIENT) -> CaptureSession:
    """End a session: no more frames are accepted; frames already queued are still analysed. Idempotent."""
    if session.ended_at is None:
        now = timezone.now()
        CaptureSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=now, end_reason=reason)
        session.refresh_from_db(fields=["ended_at", "end_reason"])
    return session


# --- Intake ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingFrame:
    """A frame as received: its bytes, the declared type and where it sits in time."""

    data: bytes
    declared_type: str | None = None
    captured_at: datetime | None = None
    media_time_ms: int | None = None

    def __repr__(self) -> str:  # never the bytes, in any traceback or log line
        return f"IncomingFrame({len(self.data)} bytes, {self.declared_type!r})"


def current_second() -> int:
    """The wall-clock second the frame-rate bound counts in."""
    return int(time.time())


def _check_frame_rate(session: CaptureSession, count: int) -> None:
    """At most VISAGE_CAPTURE_MAX_FPS frames per session per wall-clock second, counted in the cache."""
    limit = settings.VISAGE_CAPTURE_MAX_FPS
    key = f"faceanalysis:fps:{session.pk}:{current_second()}"
    store = frame_store()
    try:
        if isinstance(store, RedisFrameStore):
            used = store.count_in_window(key, count, ttl_seconds=3)  # one round trip on the hot path
        else:
            cache.add(key, 0, timeout=3)
            used = cache.incr(key, count)
    except ValueError:  # the key expired between add and incr
        cache.set(key, count, timeout=3)
        used = count
    except FrameStoreUnavailable:
        raise ServiceUnavailable("The frame store is unavailable; nothing was accepted. Try again shortly.") from None
    if used > limit:
        raise FrameRateExceeded(
            f"At most {limit} frames per second are accepted per capture session.",
            details={"max_frames_per_second": limit, "retry_after_seconds": 1},
        )


# Frames already in flight when the page's own timer stops the camera still count.
STREAM_TIME_LIMIT_GRACE_SECONDS = 10


def _check_open(session: CaptureSession) -> None:
    if session.ended_at is not None:
        if session.end_reason == CaptureSession.EndReason.CONSENT_WITHDRAWN:
            # A withdrawal is a consent answer, not a session detail: pages stop the camera on it.
            raise ConsentRequired(
                "Consent to face analysis was withdrawn; no more frames are accepted.",
                details={"reason": "withdrawn"},
            )
        raise SessionEnded("This capture session has ended; start a new one.")
    if session.source == CaptureSession.Source.BROWSER_STREAM:
        limit = settings.VISAGE_CAPTURE_MAX_SECONDS
        if timezone.now() > session.started_at + timedelta(seconds=limit + STREAM_TIME_LIMIT_GRACE_SECONDS):
            # The page stops itself at the limit; the server holds the same line for any other client.
            raise SessionEnded(f"This browser capture session reached its time limit of {limit} seconds.")


@contextlib.contextmanager
def _frame_index(index: int, count: int) -> Iterator[None]:
    """A refusal of one frame of a batch names its index."""
    try:
        yield
    except FrameRejected as error:
        if count > 1:
            error.details = {**error.details, "index": index}
        raise


def frame_intake(*, session: CaptureSession, frames: Sequence[IncomingFrame]) -> list[Frame]:
    """Accept images for a session: cheap checks, the frame-rate bound, the consent guard, the bodies' structure,
    then the bytes go to the frame store and one task per frame (ids only) is queued after commit. All frames
    or none."""
    _check_open(session)
    if not frames:
        raise FrameRejected("Send at least one frame.", code="no_frames")
    if len(frames) > settings.VISAGE_FRAME_BATCH_MAX:
        raise FrameRejected(
            f"At most {settings.VISAGE_FRAME_BATCH_MAX} frames per request.", code="batch_too_large", status_code=413
        )
    infos = []
    for index, frame in enumerate(frames):
        with _frame_index(index, len(frames)):
            infos.append(
                inspect_frame(frame.data, frame.declared_type, max_bytes=settings.VISAGE_FRAME_MAX_BYTES,
                              max_pixels=settings.VISAGE_FRAME_MAX_PIXELS, body=False)
            )
    _check_frame_rate(session, len(frames))
    # Consent before the body checks: a PNG's inflate reads its pixels (and costs milliseconds, so it runs only
    # within the session's frame rate).
    grant = _session_consent(session)
    for index, (frame, info) in enumerate(zip(frames, infos, strict=True)):
        with _frame_index(index, len(frames)):
            check_body(frame.data, info.content_type)
    return _enqueue(session=session, grant=grant, frames=frames, infos=infos, origin=Frame.Origin.IMAGE)


def video_intake(
    *, session: CaptureSession, data: bytes, declared_type: str | None, sample_fps: float | None = None
) -> list[Frame]:
    """Accept a video (MP4/WebM): decoded from memory, sampled at `sample_fps`, each sample a frame in the
    store with its media time. A video with no frames or a broken container queues nothing."""
    from faceanalysis.video import check_video, sample_video

    _check_open(session)
    fps = settings.VISAGE_VIDEO_SAMPLE_FPS if sample_fps is None else float(sample_fps)
    if not 0 < fps <= settings.VISAGE_VIDEO_MAX_SAMPLE_FPS:
        raise FrameRejected(
            f"sample_fps must be above 0 and at most {settings.VISAGE_VIDEO_MAX_SAMPLE_FPS}.", code="invalid_sample_fps"
        )
    check_video(data, declared_type, max_bytes=settings.VISAGE_VIDEO_MAX_BYTES)
    # Consent before the decode: the decode is the expensive part and handles pixels.
    grant = _session_consent(session)
    sampled = list(
        sample_video(data, sample_fps=fps, max_frames=settings.VISAGE_VIDEO_MAX_FRAMES,
                     max_pixels=settings.VISAGE_FRAME_MAX_PIXELS)
    )
    frames = [IncomingFrame(data=s.jpeg, declared_type="image/jpeg", media_time_ms=s.media_time_ms) for s in sampled]
    infos = [FrameInfo("image/jpeg", s.width, s.height, len(s.jpeg)) for s in sampled]
    del sampled
    return _enqueue(session=session, grant=grant, frames=frames, infos=infos, origin=Frame.Origin.VIDEO)


def _enqueue(
    *, session: CaptureSession, grant: Grant, frames: Sequence[IncomingFrame], infos: Sequence[FrameInfo], origin: str
) -> list[Frame]:
    queue = settings.VISAGE_ANALYSIS_QUEUE
    now = timezone.now()
    rows = [
        Frame(
            organization_id=session.organization_id,
            session=session,
            subject_id=session.subject_id,
            grant=grant,
            origin=origin,
            content_type=info.content_type,
            byte_size=info.byte_size,
            width=info.width,
            height=info.height,
            queue=queue,
            captured_at=frame.captured_at,
            media_time_ms=frame.media_time_ms,
            received_at=now,
        )
        for frame, info in zip(frames, infos, strict=True)
    ]
    # No transaction around the rows: one frame is one INSERT in autocommit (bulk_create would add BEGIN and
    # COMMIT round trips of its own), and a store that refuses has the rows deleted again below. Nothing is
    # dispatched before the bytes are stored, so no worker can see such a row; one left by a crash in between
    # holds no bytes and is counted as expired.
    if len(rows) == 1:
        insert_one(rows[0])  # the ORM's save() cost more CPU than the INSERT on every request
    else:
        Frame.objects.bulk_create(rows)
    ids = [row.pk for row in rows]
    try:
        frame_store().put_many(
            {frame_id: frame.data for frame_id, frame in zip(ids, frames, strict=True)},
            settings.VISAGE_FRAME_TTL_SECONDS,
        )
    except FrameStoreUnavailable:
        Frame.objects.filter(pk__in=ids).delete()
        raise ServiceUnavailable("The frame store is unavailable; nothing was accepted. Try again shortly.") from None
    # After commit when a caller holds a transaction; at once otherwise.
    transaction.on_commit(
        lambda: dispatch.send_analysis(
            ids, organization_id=session.organization_id, subject_id=session.subject_id, queue=queue
        )
    )
    return rows


# --- Analysis (worker) ------------------------------------------------------------------------------------------


def _mark(frame_ids: Iterable[int], status: str, reason: str = "") -> int:
    """Finish frames that are still queued; a frame already finished keeps its first outcome."""
    ids = list(frame_ids)
    if not ids:
        return 0
    return Frame.objects.filter(pk__in=ids, status=Frame.Status.QUEUED).update(
        status=status, reason=reason, finished_at=timezone.now()
    )


class CorruptFrame(ValueError):
    """A stored frame whose image data is damaged although intake's structural checks passed."""


def _decode(data: bytes, content_type: str) -> np.ndarray:
    """RGB pixels of a stored frame; OpenCV applies the EXIF orientation and is the fastest decoder here. OpenCV
    decodes a JPEG with damaged scan data into a damaged picture without a word, so a JPEG it decodes has its
    scan checked strictly too (intake checks only the structure)."""
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("undecodable frame")
    if content_type == "image/jpeg" and not jpeg_scan_intact(data):
        raise CorruptFrame("damaged JPEG scan")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _run_engine(images: list[np.ndarray], attributes: list[frozenset[str]]) -> list[Any]:
    """The engine over a batch, each image deriving only its session's attributes (the engine skips stages no
    image needs): a result or the exception per image. One bad image must not sink the others, so a failed
    batch runs one by one; an exception fails its frame (never retried, never left queued)."""
    from faceanalysis.inference import get_engine

    engine = get_engine()

    try:
        return engine.analyze_batch(images, attributes=attributes)
    except Exception as exc:
        if len(images) == 1:
            return [exc]
    results: list[Any] = []
    for image, chosen in zip(images, attributes, strict=True):
        try:
            results.append(engine.analyze_batch([image], attributes=[chosen])[0])
        except Exception as exc:  # the frame fails; the error names its type only, never pixels
            results.append(exc)
    return results


def frame_analyze(*, frame_id: int, claim_more: int = 0, consented: Grant | None = None) -> dict[str, int]:
    """Analyse a queued frame, at most once, and up to `claim_more` other queued frames of its queue (GPU
    batching across sessions). Consent is checked again under a shared lock on each subject right before the
    bytes are taken; a frame whose consent is gone is dropped unanalysed. Features, aggregates and the face
    context are written in the same transaction as the frame's new status, so a redelivered or retried
    message finds the frame finished and does nothing.

    `consented` is a grant the caller checked with the subject locked for share in the transaction this runs
    in (the task's guard, `consent_guarded(locked=True)`); a frame of that subject needs no second check.
    """
    store = frame_store()
    outcome: Counter[str] = Counter()
    # Inside the guard's transaction when the task runs it: no savepoint, the task is one unit.
    with transaction.atomic(savepoint=False):
        # With each frame its session's choice (the purposes it needs, the attributes it derives), in the same read.
        claimed = Frame.objects.select_for_update(of=("self",)).select_related("session").defer("session__aggregates")
        frames = list(claimed.filter(pk=frame_id, status=Frame.Status.QUEUED))
        if not frames:
            # Finished before (dropped by a withdrawal while its bytes were still on their way to the store,
            # say): whatever bytes are left have no analysis to wait for.
            transaction.on_commit(lambda: _discard_quietly([frame_id]))
            return {"already_finished": 1}
        if claim_more > 0 and connection.features.has_select_for_update_skip_locked:
            frames += list(
                claimed.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Frame.Status.QUEUED, queue=frames[0].queue)
                .exclude(pk=frame_id)
                .order_by("received_at")[:claim_more]
            )
        # Each subject's consent under a shared lock, in id order: workers analyse side by side, while
        # consent_withdraw (FOR UPDATE on the subject) waits for every analysis in flight, and none starts after
        # it commits. Every purpose the frame's session needs is checked, and that its notice names what the
        # session derives.
        choices = {f.session_id: (f.session.required_purpose_list, f.session.derived_attribute_set) for f in frames}
        verdicts: dict[tuple[int, int], Grant | ConsentDenied] = {}
        for subject_id, session_id, organization_id in sorted({(f.subject_id, f.session_id, f.organization_id)
                                                              for f in frames}):
            required, attributes = choices[session_id]
            checked = (
                {Purpose.FACE_ANALYSIS.value: consented}
                if consented is not None and consented.purpose == Purpose.FACE_ANALYSIS else None
            )
            try:
                verdicts[(subject_id, session_id)] = require_consents(
                    organization_id=organization_id, subject_id=subject_id,
                    purposes={Purpose.FACE_ANALYSIS, *required}, derived_attributes=attributes,
                    share_lock=True, checked=checked,
                )[Purpose.FACE_ANALYSIS]
            except ConsentDenied as denial:
                verdicts[(subject_id, session_id)] = denial

        ready: list[tuple[Frame, Grant, np.ndarray]] = []
        dropped: dict[str, list[int]] = defaultdict(list)
        taken: list[int] = []
        for frame in frames:
            grant = verdicts[(frame.subject_id, frame.session_id)]
            if isinstance(grant, ConsentDenied):
                dropped[f"consent_{grant.reason.value}"].append(frame.pk)
                continue
            data = store.take(frame.pk)  # FrameStoreUnavailable rolls back; the task retries
            if data is None:
                dropped["expired"].append(frame.pk)
                continue
            taken.append(frame.pk)
            try:
                image = _decode(data, frame.content_type)
            except CorruptFrame:
                dropped["corrupt_image"].append(frame.pk)
                continue
            except Exception:
                dropped["decode_error"].append(frame.pk)
                continue
            finally:
                del data
            ready.append((frame, grant, image))

        for reason, ids in dropped.items():
            status = (
                Frame.Status.DROPPED if reason.startswith("consent_")
                else Frame.Status.EXPIRED if reason == "expired" else Frame.Status.FAILED
            )
            outcome[status] += _mark(ids, status, reason)

        if ready:
            chosen = [choices[frame.session_id][1] for frame, _, _ in ready]
            results = _run_engine([image for _, _, image in ready], chosen)
            now = timezone.now()
            features = []
            failed: dict[str, list[int]] = defaultdict(list)
            for (frame, grant, _), keys, result in zip(ready, chosen, results, strict=True):
                if isinstance(result, Exception):
                    failed["invalid_image" if type(result).__name__ == "InvalidImageError" else "engine_error"].append(
                        frame.pk)
                    logger.warning("analysis of frame %s failed: %s", frame.pk, type(result).__name__)
                    continue
                features.append(features_from(frame, grant, result, now, keys))
            FrameFeatures.objects.bulk_create(features)
            outcome[Frame.Status.ANALYZED] += Frame.objects.filter(pk__in=[f.frame_id for f in features]).update(
                status=Frame.Status.ANALYZED, reason="", finished_at=now
            )
            for reason, ids in failed.items():
                outcome[Frame.Status.FAILED] += _mark(ids, Frame.Status.FAILED, reason)
            # Aggregates and the face context are recounted off this path, at most once per interval per session.
            sessions = {f.session_id: f.frame for f in features}
            transaction.on_commit(lambda: [dispatch.schedule_refresh(frame) for frame in sessions.values()])

        discard = [i for ids in dropped.values() for i in ids if i not in taken]
        transaction.on_commit(lambda: store.release(taken))
        if discard:
            transaction.on_commit(lambda: _discard_quietly(discard))
    return {str(status): count for status, count in outcome.items() if count}


def _discard_quietly(frame_ids: list[int]) -> None:
    try:
        frame_store().discard(frame_ids)
    except FrameStoreUnavailable:
        logger.warning("frame store unavailable; %d dropped frames are left to expire", len(frame_ids))


_REFRESH_FIELDS = (
    "public_id", "started_at", "media_ref", "organization_id", "subject_id", "campaign_id", "derived_attributes"
)


def session_aggregates_refresh(*, session_id: int, grant: Grant) -> bool:
    """Recount a session's aggregates and push them to the face context: exact for every frame committed
    before it started. Refreshes of one session run one after the other (row lock), so the last word is the
    latest count. False if the session or its features are gone."""
    cache.delete(dispatch.refresh_key(session_id))  # first: a frame committed from now on schedules the next one
    with transaction.atomic():
        # NO KEY UPDATE: refreshes of one session still queue behind each other, but the frames being inserted
        # meanwhile (their foreign keys take KEY SHARE on this row) do not wait for the recount.
        # Only a session of the subject the guard's grant is for: a message naming another is a no-op.
        session = (
            CaptureSession.objects.select_for_update(no_key=True).only(*_REFRESH_FIELDS)
            .filter(pk=session_id, organization_id=grant.organization_id, subject_id=grant.subject_id)
            .first()
        )
        if session is None:
            return False
        latest = FrameFeatures.objects.filter(session_id=session_id).order_by("-analyzed_at", "-pk").first()
        if latest is None:
            return False
        _refresh_session(session, grant, latest, now=timezone.now())
    return True


def _refresh_session(session: CaptureSession, grant: Grant, latest: FrameFeatures, *, now: datetime) -> None:
    """Recompute the session's aggregates and push them to the subject's face context for the campaign."""
    summary = session_summary(session)
    CaptureSession.objects.filter(pk=session.pk).update(aggregates=summary, aggregates_updated_at=now)
    context = {
        "session": str(session.public_id),
        "media_ref": session.media_ref,
        "aggregates": summary,
        "latest": {
            "analyzed_at": latest.analyzed_at.isoformat(),
            "face_detected": latest.face_count > 0,
            "quality_ok": latest.quality_ok,
            "looking_at_screen": latest.looking_at_screen,
            "attention_score": latest.attention_score,
            # Only what the session derives: a rule on expressions finds nothing for an attention-only campaign.
            **(
                {"smile": latest.smile, "expression": latest.expression or None}
                if "expression" in session.derived_attribute_set else {}
            ),
        },
    }
    FaceContext.objects.bulk_create(
        [FaceContext(organization_id=session.organization_id, subject_id=session.subject_id,
                     campaign_id=session.campaign_id, session=session, grant=grant, features=context, updated_at=now)],
        update_conflicts=True,
        unique_fields=["subject", "campaign"],
        update_fields=["session", "grant", "features", "updated_at"],
    )


def frame_drop(*, frame_id: int, reason: str) -> int:
    """Drop a queued frame unanalysed (consent gone) and delete its bytes; returns 1 if it was still queued."""
    dropped = _mark([frame_id], Frame.Status.DROPPED, reason)
    _discard_quietly([frame_id])
    return dropped


def frames_expire(*, limit: int = 1000) -> int:
    """Count as expired the queued frames whose bytes the store no longer holds (nobody took them in time)."""
    cutoff = timezone.now() - timedelta(seconds=settings.VISAGE_FRAME_TTL_SECONDS)
    store = frame_store()
    candidates = list(
        Frame.objects.filter(status=Frame.Status.QUEUED, received_at__lt=cutoff).order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    gone = [pk for pk in candidates if not store.exists(pk)]
    return _mark(gone, Frame.Status.EXPIRED, "expired")


# --- Withdrawal cascade ---------------------------------------------------------------------------------------


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
