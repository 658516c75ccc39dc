"""Frame and video intake: cheap checks, the frame-rate bound, the consent guard, then the bytes go to the
frame store and the ids to the analysis queue. Frame bytes pass through here on their way to the store and are
never logged, persisted or put into an exception."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from config.rawsql import insert_one
from consent.models import Grant
from faceanalysis import dispatch
from faceanalysis.errors import ConsentRequired, FrameRateExceeded, FrameRejected, ServiceUnavailable, SessionEnded
from faceanalysis.models import CaptureSession, Frame
from faceanalysis.selectors import frame_ttl_seconds
from faceanalysis.services.capture import _session_consent
from faceanalysis.store import FrameStoreUnavailable, RedisFrameStore, frame_store
from faceanalysis.validation import FrameInfo, check_body, inspect_frame


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
            frame_ttl_seconds(session=session),
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
