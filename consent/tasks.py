"""Periodic consent work. Thin: one service call."""

from celery import shared_task

from consent.services import grants_expire

EXPIRE_BATCH = 1000


@shared_task(name="consent.expire_grants", acks_late=True, time_limit=300, soft_time_limit=240, ignore_result=True)
def expire_grants() -> int:
    """End grants whose time ran out and record `expired` in the ledger (the guard refuses them already)."""
    total = 0
    while True:
        ended = grants_expire(limit=EXPIRE_BATCH)
        total += ended
        if ended < EXPIRE_BATCH:
            return total
