"""The one place that names segments' tasks and sends them (by name from Celery's registry). A subject's refresh
is debounced in the cache, so a burst of frames asks for one; the broker's and the cache's own errors stop here
and become a logged skip, since the next full recompute brings the segment up to date anyway."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.core.cache import cache

from config.broker import BROKER_ERRORS, REDIS_ERRORS

logger = logging.getLogger(__name__)

RECOMPUTE_DUE = "segments.recompute_due"
RECOMPUTE = "segments.recompute"
REFRESH_SUBJECT = "segments.refresh_subject"


def subject_refresh_key(subject_id: int) -> str:
    return f"segments:refresh-scheduled:{subject_id}"


def send_subject_refresh(*, organization_id: int, subject_id: int) -> None:
    """Make sure one refresh of the subject's memberships is scheduled, VISAGE_SEGMENT_REFRESH_SECONDS from the
    first news that asked (the task clears the mark first, so news after that schedules the next)."""
    delay = settings.VISAGE_SEGMENT_REFRESH_SECONDS
    try:
        if not cache.add(subject_refresh_key(subject_id), 1, timeout=max(1, round(delay * 10))):
            return
    except REDIS_ERRORS:
        logger.warning("cache unavailable; a subject's segment refresh was not scheduled")
        return
    kwargs = {"organization_id": organization_id, "subject_id": subject_id}
    try:
        current_app.tasks[REFRESH_SUBJECT].apply_async(kwargs=kwargs, countdown=delay)
    except BROKER_ERRORS:
        cache.delete(subject_refresh_key(subject_id))
        logger.warning("broker unavailable; a subject's segment refresh was not queued")
    except Exception as error:  # run in-process (eager): its failure must not fail the frame or event that asked
        logger.warning("a subject's segment refresh failed (%s); the next recompute catches up", type(error).__name__)


def send_recompute(*, segment_id: int) -> bool:
    """Queue a full recompute of one segment; False when the broker refused (beat runs it when due)."""
    try:
        current_app.tasks[RECOMPUTE].apply_async(kwargs={"segment_id": segment_id})
    except BROKER_ERRORS:
        logger.warning("broker unavailable; segment %s's recompute was not queued", segment_id)
        return False
    return True
