"""The one place that names the analysis queues and the face-analysis tasks, and sends them.

A task is found by its name in the Celery app's registry (the app config imports `faceanalysis.tasks` in
every process, web included), so services and tasks never import each other, and on the embedded default
(`CELERY_TASK_ALWAYS_EAGER`) a send still runs the task in-process. The broker's and the cache's own errors
stop here: they become `faceanalysis.errors` or a logged skip, never reach a service.
"""

from __future__ import annotations

import contextlib
import logging

import redis
from celery import current_app
from celery.exceptions import Retry
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from config.broker import BROKER_ERRORS, REDIS_ERRORS
from faceanalysis.errors import ServiceUnavailable
from faceanalysis.models import Frame
from faceanalysis.store import FrameStoreUnavailable, frame_store

logger = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
# settings.VISAGE_ANALYSIS_QUEUE picks one: CPU workers, or GPU workers that batch frames across sessions.
ANALYSIS_QUEUE = "analysis"
GPU_QUEUE = "analysis_gpu"
ANALYSIS_QUEUES = frozenset({ANALYSIS_QUEUE, GPU_QUEUE})

ANALYZE_FRAME = "faceanalysis.analyze_frame"
ANALYZE_FRAME_GPU = "faceanalysis.analyze_frame_gpu"
REFRESH_SESSION_AGGREGATES = "faceanalysis.refresh_session_aggregates"
EXPIRE_FRAMES = "pipeline.expire_frames"



def send_analysis(frame_ids: list[int], *, organization_id: int, subject_id: int, queue: str) -> None:
    """Queue one analysis task per frame, ids only. A broker that refuses fails the frames and drops their
    bytes, so nothing waits for a message that was never sent."""
    task = current_app.tasks[ANALYZE_FRAME_GPU if queue == GPU_QUEUE else ANALYZE_FRAME]
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
    except BROKER_ERRORS:
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


def refresh_key(session_id: int) -> str:
    """The cache mark of a session whose recount is scheduled; the recount clears it first."""
    return f"faceanalysis:refresh-scheduled:{session_id}"


def schedule_refresh(frame: Frame) -> None:
    """After a frame's commit: make sure a recount of its session is scheduled, at most one at a time, an
    interval from the first frame that asked. Asking after the commit is what makes it exact: if a recount
    is already scheduled it has not started (it clears the mark first), so it will see this frame."""
    delay = settings.VISAGE_AGGREGATES_REFRESH_MS / 1000.0
    try:
        if not cache.add(refresh_key(frame.session_id), 1, timeout=max(1, round(delay * 10))):
            return
    except REDIS_ERRORS:  # the cache is away: freshness waits for the next frame, nothing else does
        logger.warning("cache unavailable; a session's aggregates refresh was not scheduled")
        return
    kwargs = {"organization_id": frame.organization_id, "subject_id": frame.subject_id, "session_id": frame.session_id}
    try:
        current_app.tasks[REFRESH_SESSION_AGGREGATES].apply_async(kwargs=kwargs, countdown=delay)
    except BROKER_ERRORS:
        cache.delete(refresh_key(frame.session_id))
        logger.warning("broker unavailable; a session's aggregates refresh was not queued")


def broker_queue_depths() -> dict[str, int] | None:
    """Messages waiting in the analysis queues of a Redis broker (all organizations); None elsewhere."""
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
        return None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return {queue: int(client.llen(queue)) for queue in (DEFAULT_QUEUE, ANALYSIS_QUEUE, GPU_QUEUE)}
    except REDIS_ERRORS:
        return None
