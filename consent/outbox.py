"""The partner event feed, written as an outbox: an event is a row in the transaction of what it reports, so it
exists exactly when that committed. Numbered per organization under the ledger's chain-head lock, the feed's
order is commit order and a cursor (`after=<sequence>`) never skips an event. Webhooks will deliver from here."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from consent.ledger import chain_head_lock
from consent.models import ChainHead, OutboxEvent


def event_emit(
    *, organization: Organization, type: str, subject_ref: str = "", payload: dict[str, Any] | None = None
) -> OutboxEvent:
    """Append one event to the organization's feed, inside the caller's transaction. Ids and counts only."""
    if type not in OutboxEvent.Type.values:
        raise ValueError(f"Unknown event type {type!r}.")
    with transaction.atomic():
        head = chain_head_lock(organization)
        ChainHead.objects.filter(pk=head.pk).update(last_event_sequence=F("last_event_sequence") + 1)
        return OutboxEvent.objects.create(
            organization=organization, sequence=head.last_event_sequence + 1, type=type,
            occurred_at=timezone.now(), subject_ref=str(subject_ref or ""), payload=payload or {},
        )
