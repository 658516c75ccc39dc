"""Consent's Celery tasks. Thin: one service call each, ids only."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from consent import dispatch, purging
from consent.services import grants_expire

EXPIRE_BATCH = 1000


@shared_task(name=dispatch.EXPIRE_GRANTS, acks_late=True, time_limit=300, soft_time_limit=240, ignore_result=True)
def expire_grants() -> int:
    """End grants whose time ran out and record `expired` in the ledger (the guard refuses them already)."""
    total = 0
    while True:
        ended = grants_expire(limit=EXPIRE_BATCH)
        total += ended
        if ended < EXPIRE_BATCH:
            return total


# A killed worker's message comes back (acks late); a failing purger leaves its part owed, and beat sends it again.
@shared_task(name=dispatch.RUN_PURGE_PART, acks_late=True, reject_on_worker_lost=True, time_limit=600,
             soft_time_limit=540, ignore_result=True, autoretry_for=(OperationalError, InterfaceError),
             retry_backoff=1, max_retries=3)
def run_purge_part(*, part_id: int) -> str:
    """Do one part of a purge request: its purger's deletion, its receipt, the part marked done, in one go (a
    retention part: in batches, stopping after VISAGE_RETENTION_PART_SECONDS for beat to continue it)."""
    return purging.purge_part_run(part_id=part_id)


@shared_task(name=dispatch.REDISPATCH_OWED_PURGES, acks_late=True, time_limit=120, ignore_result=True)
def redispatch_owed_purges() -> int:
    """Periodic: send the owed purge parts again whose message was lost, whose worker died or whose purger failed."""
    return purging.purge_parts_redispatch()


# Recording only (an EXISTS per category and organization): the deleting happens in the parts, each its own task.
# Twice (beat's tick redelivered): the second finds the first's parts owed and records nothing; even two runs at
# the same instant only add a second part per category, and SKIP LOCKED keeps each row deleted once.
@shared_task(name=dispatch.RETENTION_RUN, acks_late=True, time_limit=300, soft_time_limit=240, ignore_result=True)
def retention_run() -> int:
    """Periodic: a purge request per organization with rows past a category's period, one part per purger and
    category, each deleting in batches and writing its receipt."""
    return len(purging.retention_run())
