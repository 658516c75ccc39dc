"""The consent ledger: append-only, hash-chained per organization, verifiable link by link."""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils import timezone

from accounts.models import Organization
from consent.models import ChainHead, LedgerEntry

GENESIS_HASH = "0" * 64


def canonical_json(content: dict[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(content: dict[str, Any], prev_hash: str) -> str:
    """sha256(canonical JSON of the content + the previous link's hash), hex."""
    return hashlib.sha256(canonical_json(content) + prev_hash.encode()).hexdigest()


def subject_digest(subject_ref: str) -> str:
    """What the chain covers of an entry's subject: sha256 of its public id ("" for none). An erasure cuts the
    public id from the entry and leaves this, so the chain still verifies."""
    return hashlib.sha256(subject_ref.encode()).hexdigest() if subject_ref else ""


def chain_head_lock(organization: Organization) -> ChainHead:
    # INSERT ... ON CONFLICT DO NOTHING, then a row lock: concurrent first appends cannot both create it.
    ChainHead.objects.bulk_create([ChainHead(organization=organization)], ignore_conflicts=True)
    return ChainHead.objects.select_for_update().get(organization=organization)


def ledger_append(
    *,
    organization: Organization,
    event: str,
    subject_ref: str = "",
    purposes: str = "",
    notice_hash: str = "",
    language: str = "",
    channel: str = "",
    context_ref: str = "",
    evidence: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> LedgerEntry:
    """Append one event to the organization's chain. Serializes on the chain head row, so call it inside the
    transaction that makes the change it records; the row and the change commit or roll back together."""
    if event not in LedgerEntry.Event.values:
        raise ValueError(f"Unknown ledger event {event!r}.")
    with transaction.atomic():
        head = chain_head_lock(organization)
        entry = LedgerEntry(
            organization=organization,
            sequence=head.last_sequence + 1,
            event=event,
            occurred_at=occurred_at or timezone.now(),
            subject_ref=str(subject_ref or ""),
            subject_digest=subject_digest(str(subject_ref or "")),
            purposes=purposes,
            notice_hash=notice_hash,
            language=language,
            channel=channel,
            context_ref=context_ref,
            evidence=evidence or {},
            payload=payload or {},
            prev_hash=head.last_hash,
        )
        entry.hash = entry_hash(entry.canonical_content(), entry.prev_hash)
        entry.save()
        ChainHead.objects.filter(pk=head.pk).update(last_sequence=entry.sequence, last_hash=entry.hash)
    return entry


def ledger_subject_cut(*, organization: Organization, subject_ref: str) -> int:
    """An erasure: cut the subject's public id from its ledger entries. The entries stay, as the proof of consent
    the law asks for (GDPR Art. 7(1), 17(3)(e)); their hash covers the digest, so the chain still verifies. The
    triggers allow this change and no other. Entries from before digests existed are left as they are. Returns
    how many were cut; idempotent."""
    if not subject_ref:
        return 0
    rows = LedgerEntry.objects.filter(organization=organization, subject_ref=subject_ref).exclude(subject_digest="")
    return models.QuerySet.update(rows, subject_ref="")


@dataclass(frozen=True)
class ChainVerification:
    """The result of walking one organization's chain."""

    organization_id: int
    ok: bool
    checked: int
    first_broken_sequence: int | None = None
    first_broken_id: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"organization {self.organization_id}: {self.checked} entries, chain intact"
        return (
            f"organization {self.organization_id}: BROKEN at sequence {self.first_broken_sequence} "
            f"(row id {self.first_broken_id}): {self.reason}"
        )


def ledger_verify(*, organization: Organization) -> ChainVerification:
    """Walk the organization's chain in sequence order and point at the first broken link."""
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    entries = LedgerEntry.objects.for_organization(organization).order_by("sequence")
    for entry in entries.iterator(chunk_size=2000):
        reason = ""
        if entry.sequence != expected_sequence:
            reason = f"expected sequence {expected_sequence}; a row is missing or was renumbered"
        elif entry.prev_hash != expected_prev:
            reason = "prev_hash does not match the previous row's hash"
        elif entry_hash(entry.canonical_content(), entry.prev_hash) != entry.hash:
            reason = "the row's content does not match its hash (changed after it was written)"
        elif entry.subject_digest and entry.subject_ref and subject_digest(entry.subject_ref) != entry.subject_digest:
            # The hash covers the digest, not the public id (an erasure may cut it): a public id still there must
            # be the one the digest was made of.
            reason = "the row's subject does not match the subject its hash covers (changed after it was written)"
        if reason:
            return ChainVerification(organization.pk, False, checked, entry.sequence, entry.pk, reason)
        expected_prev = entry.hash
        expected_sequence += 1
        checked += 1
    head = ChainHead.objects.filter(organization=organization).first()
    if head is not None and (head.last_sequence != checked or head.last_hash != expected_prev):
        return ChainVerification(
            organization.pk,
            False,
            checked,
            checked + 1,
            None,
            f"the chain head says {head.last_sequence} entries; rows after sequence {checked} are missing",
        )
    return ChainVerification(organization.pk, True, checked)


# The transaction-local setting the ledger's TRUNCATE trigger lets through (migration 0007).
TRUNCATE_SETTING = "visage.ledger_truncate"


@contextmanager
def ledger_truncation_allowed(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Let statements in this block empty the ledger table, in one transaction: only for emptying the whole
    database (`manage.py flush`), never to remove entries. Outside the block, and in any other connection,
    the database refuses as before; an error inside rolls the allowance back with everything else."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # is_local=true: ends with the transaction (or the savepoint this block is, if it fails).
            cursor.execute("SELECT set_config(%s, 'on', true)", [TRUNCATE_SETTING])
            yield
            # Within an outer transaction the allowance would outlive the block: take it back explicitly.
            cursor.execute("SELECT set_config(%s, '', true)", [TRUNCATE_SETTING])
        elif connection.vendor == "sqlite":
            # No session settings in SQLite: its row triggers are lifted inside the transaction (DDL is
            # transactional there, so no other connection ever sees the table without them) and put back.
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [LedgerEntry._meta.db_table],
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            yield
            for _, sql in triggers:
                cursor.execute(sql)
        else:
            yield
