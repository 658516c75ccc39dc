"""The one place that names consent's tasks and sends them (by registry name: services and tasks never import
each other). The broker's errors stop here."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings

from config.broker import BROKER_ERRORS

logger = logging.getLogger(__name__)

EXPIRE_GRANTS = "consent.expire_grants"
RUN_PURGE_PART = "consent.run_purge_part"
REDISPATCH_OWED_PURGES = "consent.redispatch_owed_purges"
RETENTION_RUN = "retention.run"


def send_purge_parts(part_ids: list[int]) -> list[int]:
    """One task per purge part, ids only, over one producer that fails at once when the broker is away. Returns
    the parts that could not be sent."""
    task = current_app.tasks[RUN_PURGE_PART]
    sent = 0
    try:
        with task.app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0, timeout=settings.VISAGE_BROKER_PUBLISH_TIMEOUT_SECONDS)
            for part_id in part_ids:
                task.apply_async(kwargs={"part_id": part_id}, producer=producer, retry=False)
                sent += 1
    except BROKER_ERRORS:
        logger.warning("broker unavailable; %d purge parts were not sent", len(part_ids) - sent)
    return part_ids[sent:]
