"""Segments' Celery tasks. Thin: one service call each."""

from __future__ import annotations

import contextlib

from celery import shared_task
from django.core.cache import cache

from config.broker import REDIS_ERRORS
from segments import dispatch, services


@shared_task(name=dispatch.RECOMPUTE_DUE, acks_late=True, time_limit=120, ignore_result=True)
def recompute_due() -> int:
    """Periodic: queue the dynamic segments whose adaptive cadence has passed since their last run."""
    due = services.segments_due()
    for segment_id in due:
        dispatch.send_recompute(segment_id=segment_id)
    return len(due)


@shared_task(name=dispatch.RECOMPUTE, acks_late=True, time_limit=900, soft_time_limit=840, ignore_result=True)
def recompute(*, segment_id: int) -> int | None:
    """Recompute one dynamic segment's members; returns the size."""
    run = services.segment_recompute(segment_id=segment_id)
    return None if run is None else run.size


# A soft limit below the hard one: the default soft limit (CELERY_TASK_SOFT_TIME_LIMIT) is above 60 s, and Celery
# refuses to send a task whose soft limit exceeds its hard one.
@shared_task(name=dispatch.REFRESH_SUBJECT, acks_late=True, time_limit=60, soft_time_limit=50, ignore_result=True)
def refresh_subject(*, organization_id: int, subject_id: int) -> dict[str, str]:
    """Bring one subject's membership of the organization's dynamic segments up to date."""
    with contextlib.suppress(*REDIS_ERRORS):  # first: news from now on schedules the next refresh
        cache.delete(dispatch.subject_refresh_key(subject_id))
    return services.segment_refresh_subject(organization_id=organization_id, subject_id=subject_id)
