"""Writes of face analysis: capture sessions, frame intake, analysis in the worker, and the purge that a
withdrawal of consent sets off. Frame bytes pass through here on their way to the frame store or out of it,
and are never logged, persisted or put into an exception."""

from __future__ import annotations

import contextlib
import hashlib
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
from django.db.models import Avg, Count, Q
from django.utils import timezone

from accounts.models import Organization
from campaigns.models import Campaign
from config.rawsql import insert_one
from consent import derived
from consent.guards import ConsentDenied, DenialReason, has_consent, require_consents
from consent.models import Grant, Purpose, Subject, purposes_key
from faceanalysis import aggregates
from faceanalysis.errors import (
    ConsentRequired,
    FaceAnalysisError,
    FrameRateExceeded,
    FrameRejected,
    ServiceUnavailable,
    SessionEnded,
)
from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
from faceanalysis.store import FrameStoreUnavailable, RedisFrameStore, frame_store
from faceanalysis.validation import FrameInfo, check_body, inspect_frame, jpeg_scan_intact

logger = logging.getLogger(__name__)

CAPTURE_TOKEN_PREFIX = "vcs"  # noqa: S105 - a public prefix, not a secret
GPU_QUEUE = "analysis_gpu"


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


# --- Capture sessions -----------------------------------------------------------------------------------------


def hash_capture_token(token: str) -> str:
    """Stored form of a capture token (256 random bits, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


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
        token_hash=hash_capture_token(token),
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
        lambda: _dispatch(ids, organization_id=session.organization_id, subject_id=session.subject_id, queue=queue)
    )
    return rows


def _dispatch(frame_ids: list[int], *, organization_id: int, subject_id: int, queue: str) -> None:
    """Queue one analysis task per frame, ids only. A broker that refuses fails the frames and drops their
    bytes, so nothing waits for a message that was never sent."""
    from celery.exceptions import Retry
    from kombu.exceptions import OperationalError

    from faceanalysis import tasks

    task = tasks.analyze_frame_gpu if queue == GPU_QUEUE else tasks.analyze_frame
    sent = 0
    try:
        # One producer (one broker connection) for the whole batch. This runs on every intake request, so:
        # the kwargs' repr for monitoring is plain repr (Celery's default saferepr costs more than the rest
        # of the message), and no retry loop around the publish (redis-py reconnects by itself; a broker that
        # stays down fails the frames below).
        with task.app.producer_or_acquire() as producer:
            # A broker that is away fails here at once: kombu's own connect loop (a retry every 2 s for the
            # broker connection timeout) would hold the request for seconds before the same 503.
            producer.connection.ensure_connection(max_retries=0, timeout=settings.VISAGE_BROKER_PUBLISH_TIMEOUT_SECONDS)
            for frame_id in frame_ids:
                kwargs = {"organization_id": organization_id, "subject_id": subject_id, "frame_id": frame_id}
                task.apply_async(
                    kwargs=kwargs, queue=queue, producer=producer, argsrepr="()", kwargsrepr=repr(kwargs),
                    retry=False,
                )
                sent += 1
    except Retry as retry:  # an in-process (eager) task asked to be tried again: the request answers its cause
        raise (retry.exc or retry) from None
    except (OperationalError, *_redis_errors()):
        unsent = frame_ids[sent:]
        Frame.objects.filter(pk__in=unsent, status=Frame.Status.QUEUED).update(
            status=Frame.Status.FAILED, reason="broker_unavailable", finished_at=timezone.now()
        )
        with contextlib.suppress(FrameStoreUnavailable):  # the TTL removes them
            frame_store().discard(unsent)
        raise ServiceUnavailable(
            "The task broker is unavailable; the frames were not queued. Try again shortly.",
            code="broker_unavailable", details={"frames_not_queued": len(unsent)},
        ) from None


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


def _only_chosen(face: dict[str, Any], chosen: frozenset[str]) -> dict[str, Any]:
    """An engine face as stored: no raw biometric data, and nothing of an attribute the session did not choose
    (the engine skipped those stages; this holds whatever engine ran)."""
    for name in derived.RAW_BIOMETRIC_FIELDS:
        face.pop(name, None)  # biometric raw data is never kept, whatever the engine was asked for
    for attribute in derived.DERIVED_ATTRIBUTES:
        if attribute.key not in chosen:
            for name in attribute.result_fields:
                if name in face:
                    face[name] = None
    return face


def _features_from(
    frame: Frame, grant: Grant, analysis: Any, now: datetime, chosen: frozenset[str]
) -> FrameFeatures:
    """The row of derived features for one analysed frame, holding only the attributes in `chosen`."""
    face = analysis.faces[0] if analysis.faces else None
    smile = None
    if face is not None and face.blendshapes:
        smile = (face.blendshapes.get("mouthSmileLeft", 0.0) + face.blendshapes.get("mouthSmileRight", 0.0)) / 2
    faces = [_only_chosen(item.to_dict(), chosen) for item in analysis.faces]
    features = FrameFeatures(
        organization_id=frame.organization_id,
        frame=frame,
        session_id=frame.session_id,
        subject_id=frame.subject_id,
        grant=grant,
        media_time_ms=frame.media_time_ms,
        captured_at=frame.captured_at,
        face_count=len(analysis.faces),
        quality_ok=bool(face is not None and face.quality.acceptable),
        quality_reasons=list(face.quality.reasons) if face is not None else ["no_face"],
        attention_score=face.gaze.attention_score if face is not None and face.gaze else None,
        looking_at_screen=face.gaze.looking_at_screen if face is not None and face.gaze else None,
        eyes_open=face.eyes.open if face is not None and face.eyes else None,
        smile=round(smile, 4) if smile is not None else None,
        expression=face.expression.top if face is not None and face.expression else "",
        expression_confidence=face.expression.confidence if face is not None and face.expression else None,
        faces=faces,
        model_versions=[model.to_dict() for model in analysis.models],
        received_at=frame.received_at,
        analyzed_at=now,
        latency_ms=round((now - frame.received_at).total_seconds() * 1000.0, 2),
    )
    for column, key in FrameFeatures.ATTRIBUTE_COLUMNS.items():
        if key not in chosen:
            field = FrameFeatures._meta.get_field(column)
            setattr(features, column, None if field.null else field.get_default())
    return features


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
                features.append(_features_from(frame, grant, result, now, keys))
            FrameFeatures.objects.bulk_create(features)
            outcome[Frame.Status.ANALYZED] += Frame.objects.filter(pk__in=[f.frame_id for f in features]).update(
                status=Frame.Status.ANALYZED, reason="", finished_at=now
            )
            for reason, ids in failed.items():
                outcome[Frame.Status.FAILED] += _mark(ids, Frame.Status.FAILED, reason)
            # Aggregates and the face context are recounted off this path, at most once per interval per session.
            sessions = {f.session_id: f.frame for f in features}
            transaction.on_commit(lambda: [_schedule_refresh(frame) for frame in sessions.values()])

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


def _timeline_rows(rows: Iterable[tuple], session: CaptureSession) -> list[aggregates.FeatureRow]:
    """FeatureRows from value tuples that start with (media_time_ms, captured_at, received_at)."""
    result = []
    for media_time_ms, captured_at, received_at, *rest in rows:
        if media_time_ms is not None:
            t = media_time_ms / 1000.0
        else:
            t = max(0.0, ((captured_at or received_at) - session.started_at).total_seconds())
        result.append(aggregates.FeatureRow(t, *rest))
    return result


_ROW_COLUMNS = ("media_time_ms", "captured_at", "received_at", "face_count", "quality_ok", "looking_at_screen",
                "attention_score", "eyes_open", "smile", "expression")


def session_feature_rows(session: CaptureSession) -> list[aggregates.FeatureRow]:
    """The session's derived features in the shape the aggregate functions take."""
    return _timeline_rows(FrameFeatures.objects.filter(session=session).values_list(*_ROW_COLUMNS), session)


def session_summary(session: CaptureSession) -> dict[str, object]:
    """The session's aggregates, counted by the database (the worker runs this after every frame, so it must
    not load every row); same definitions as `aggregates.summarize`, which a test holds it to."""
    features = FrameFeatures.objects.filter(session=session)
    counting = Q(face_count__gt=0, quality_ok=True)  # aggregates.is_counting
    totals = features.aggregate(
        analysed=Count("pk"),
        counted=Count("pk", filter=counting),
        looking=Count("pk", filter=counting & Q(looking_at_screen=True)),
        smiling=Count("pk", filter=counting & Q(smile__gte=aggregates.SMILE_THRESHOLD)),
        score=Avg("attention_score", filter=counting),
    )
    expressions = dict(
        features.filter(counting).exclude(expression="").values_list("expression").annotate(n=Count("pk"))
    )
    # Blinks need the eye state in time order: two columns of the counting frames with a known eye state.
    eye_rows = _timeline_rows(
        (
            (m, c, r, 1, True, None, None, eyes_open, None, "")
            for m, c, r, eyes_open in features.filter(counting, eyes_open__isnull=False).values_list(
                "media_time_ms", "captured_at", "received_at", "eyes_open"
            )
        ),
        session,
    )
    eye_rows.sort(key=lambda row: row.t)
    return aggregates.compose(
        aggregates.Totals(
            analysed=totals["analysed"], counted=totals["counted"], looking=totals["looking"],
            smiling=totals["smiling"], mean_attention_score=totals["score"], expressions=expressions,
        ),
        eye_rows,
        session.derived_attribute_set,
    )


_REFRESH_FIELDS = (
    "public_id", "started_at", "media_ref", "organization_id", "subject_id", "campaign_id", "derived_attributes"
)


def _refresh_key(session_id: int) -> str:
    return f"faceanalysis:refresh-scheduled:{session_id}"


def _schedule_refresh(frame: Frame) -> None:
    """After a frame's commit: make sure a recount of its session is scheduled, at most one at a time, an
    interval from the first frame that asked. Asking after the commit is what makes it exact: if a recount
    is already scheduled it has not started (it clears the mark first), so it will see this frame."""
    delay = settings.VISAGE_AGGREGATES_REFRESH_MS / 1000.0
    try:
        if not cache.add(_refresh_key(frame.session_id), 1, timeout=max(1, round(delay * 10))):
            return
    except _redis_errors():  # the cache is away: freshness waits for the next frame, nothing else does
        logger.warning("cache unavailable; a session's aggregates refresh was not scheduled")
        return
    from kombu.exceptions import OperationalError

    from faceanalysis import tasks

    kwargs = {"organization_id": frame.organization_id, "subject_id": frame.subject_id, "session_id": frame.session_id}
    try:
        tasks.refresh_session_aggregates.apply_async(kwargs=kwargs, countdown=delay)
    except (OperationalError, *_redis_errors()):
        cache.delete(_refresh_key(frame.session_id))
        logger.warning("broker unavailable; a session's aggregates refresh was not queued")


def session_aggregates_refresh(*, session_id: int, grant: Grant) -> bool:
    """Recount a session's aggregates and push them to the face context: exact for every frame committed
    before it started. Refreshes of one session run one after the other (row lock), so the last word is the
    latest count. False if the session or its features are gone."""
    cache.delete(_refresh_key(session_id))  # first: a frame committed from now on schedules the next one
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
