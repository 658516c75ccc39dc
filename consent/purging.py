"""Purges that cannot be lost.

A withdrawal, an expiry, an erasure or a retention run records a PurgeRequest in its own transaction, with one
PurgePart for each registered purger it concerns. After commit each part runs as its own Celery task (ids only):
the purger deletes its app's rows, and its receipt (counts, never content) goes to the ledger, in one transaction
with the part marked done. A part that fails, or whose worker is killed, stays owed: the task is redelivered
(acks late) and beat re-dispatches owed parts, so every part is done once and has one receipt.

A retention run differs in one way: its parts (one per purger and retention category) delete in bounded batches,
each its own short transaction, and write their receipt when a batch finds nothing more (`retention_part_run`),
so a purge of millions of rows holds no lock for long and continues where it was interrupted.

Each app that keeps subject data registers a purger for its own tables in its AppConfig.ready(), so consent never
imports the apps above it; a test fails when a model pointing at a subject is claimed by no purger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, QuerySet
from django.utils import timezone

from accounts.models import Organization
from consent.batches import rows_batch_purge
from consent.dispatch import send_purge_parts
from consent.ledger import ledger_append, ledger_subject_cut
from consent.models import (
    DataRequest,
    Grant,
    LedgerEntry,
    OutboxEvent,
    PurgePart,
    PurgeRequest,
    RetentionPolicy,
    purposes_key,
)
from consent.outbox import event_emit
from consent.retention import CATEGORIES, CATEGORY_BY_KEY, Category, effective_period
from consent.selectors import retention_policy_in_force

logger = logging.getLogger(__name__)

# An owed part whose last dispatch is older than this is sent again by beat (its message was lost, its worker
# killed, or its purger failed).
REDISPATCH_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class PurgeOrder:
    """What one purger is asked to delete: ids and a cutoff, nothing else."""

    organization_id: int
    reason: str
    subject_id: int | None
    purposes: frozenset[str]
    before: datetime | None  # a retention run: what is older than this

    @property
    def erasure(self) -> bool:
        return self.reason == PurgeRequest.Reason.SUBJECT_ERASED


@dataclass(frozen=True)
class RetentionTarget:
    """One retention category's rows in one table (consent.retention.CATEGORIES): `expired(organization_id,
    before)` is the queryset of the organization's rows whose `timestamp` is older than the cutoff. The retention
    run deletes them in bounded batches, or, with `cut`, updates them with those values (the row stays, anonymous)."""

    category: str
    model: str
    expired: Callable[[int, datetime], QuerySet]
    timestamp: str
    cut: dict[str, object] | None = None


# One row of a subject's export: the model's label and the row's fields (JSON-ready), streamed.
ExportRow = tuple[str, dict[str, object]]


@dataclass(frozen=True)
class Purger:
    """An app's purge of its own tables. `purge` is idempotent (a second run finds nothing more to delete) and
    returns counts; it runs in the transaction that marks its part done and writes its receipt.

    `models` are the "app_label.Model" labels of every table it purges (the coverage test reads them). It owes
    a part when consent to any of `purposes` ends, and on every erasure; in a retention run, one part per category
    of its `retention` targets that has rows past the organization's period (those parts delete in batches and
    never call `purge`)."""

    name: str
    models: tuple[str, ...]
    purge: Callable[[PurgeOrder], dict[str, int]]
    purposes: frozenset[str] = frozenset()
    # A cheap step run in the recording process right after its commit, before the part is sent (face analysis
    # ends the subject's open capture sessions, so no page opens a camera for a withdrawn consent while the part
    # waits for a worker). Not in the recording transaction: that holds the subject locked, which a recount
    # writing the face context would wait for while holding a session. Best effort, as the part does it too;
    # its counts go into the part's receipt.
    at_once: Callable[[PurgeOrder], dict[str, int]] | None = None
    # A subject's rows in every table of `models`, for access and export requests: (organization_id, subject_id)
    # -> ExportRow per row, lazily. The completeness test holds it to `models`, as the coverage test holds `purge`.
    export: Callable[[int, int], Iterable[ExportRow]] | None = None
    # What a retention run deletes (or cuts) of this app's tables, per category.
    retention: tuple[RetentionTarget, ...] = ()


_PURGERS: dict[str, Purger] = {}


def purger_register(purger: Purger) -> None:
    """Register an app's purger (from its AppConfig.ready()); registering the same name again replaces it."""
    _PURGERS[purger.name] = purger


def purgers() -> list[Purger]:
    """Every registered purger, by name."""
    return [_PURGERS[name] for name in sorted(_PURGERS)]


def _owing(reason: str, purposes: Iterable[str]) -> list[Purger]:
    wanted = set(purposes)
    if reason == PurgeRequest.Reason.SUBJECT_ERASED:
        return purgers()
    if reason == PurgeRequest.Reason.RETENTION_PERIOD_ENDED:
        return []  # a retention run records its own parts, one per purger and category (retention_run)
    return [p for p in purgers() if p.purposes & wanted]


def purge_request_record(
    *,
    organization_id: int,
    reason: str,
    subject_id: int | None = None,
    subject_ref: str = "",
    purposes: Iterable[str] = (),
    before: datetime | None = None,
    only: Iterable[str] | None = None,
) -> PurgeRequest | None:
    """Record what is owed, inside the caller's transaction (so it commits with the withdrawal, expiry or erasure
    that owes it), and dispatch its parts once that commits. None when no purger concerns it. `only` limits it to
    the purgers named."""
    owing = _owing(reason, purposes)
    if only is not None:
        owing = [p for p in owing if p.name in set(only)]
    if not owing:
        return None
    request = PurgeRequest.objects.create(
        organization_id=organization_id, reason=reason, subject_id=subject_id, subject_ref=subject_ref,
        purposes=purposes_key(list(purposes)), before=before,
    )
    parts = PurgePart.objects.bulk_create(
        [PurgePart(organization_id=organization_id, request=request, purger=p.name) for p in owing]
    )
    _dispatch_after_commit(request, parts, at_once=True)
    return request


def _dispatch_after_commit(request: PurgeRequest, parts: list[PurgePart], *, at_once: bool) -> None:
    ids = [part.pk for part in parts]

    def after_commit() -> None:
        try:
            if at_once:
                _at_once(request, parts)
            purge_parts_dispatch(part_ids=ids)
        except Exception as error:  # the database went away after the commit: the parts stay owed for beat
            logger.warning("purge request %s not dispatched (%s); beat sends it", request.pk, type(error).__name__)

    transaction.on_commit(after_commit)


def _at_once(request: PurgeRequest, parts: list[PurgePart]) -> None:
    order = _order(request)
    for part in parts:
        purger = _PURGERS.get(part.purger)
        if purger is None or purger.at_once is None:
            continue
        try:
            counts = purger.at_once(order)
            # Only while owed: a part already done counted what it found itself.
            PurgePart.objects.filter(pk=part.pk, status=PurgePart.Status.OWED).update(counts=counts)
        except Exception as error:  # the part does it anyway
            logger.warning("purge part %s: its immediate step failed (%s)", part.pk, type(error).__name__)


def _order(request: PurgeRequest) -> PurgeOrder:
    return PurgeOrder(
        organization_id=request.organization_id, reason=request.reason, subject_id=request.subject_id,
        purposes=frozenset(request.purpose_list), before=request.before,
    )


def purge_parts_dispatch(*, part_ids: list[int]) -> None:
    """Send one task per part (ids only). In-process on the embedded default (no broker), and whenever the broker
    refuses: the purge then happens now, in this process, as it would have in a worker. Never raises: what could
    not be done stays owed, and beat (or the admin's "Run owed parts") sends it again."""
    if not part_ids:
        return
    PurgePart.objects.filter(pk__in=part_ids, status=PurgePart.Status.OWED).update(dispatched_at=timezone.now())
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _run_here(part_ids)
        return
    unsent = send_purge_parts(part_ids)
    if unsent:
        logger.warning("%d purge parts run in this process", len(unsent))
        _run_here(unsent)


def _run_here(part_ids: list[int]) -> None:
    for part_id in part_ids:
        try:
            purge_part_run(part_id=part_id)
        except Exception as error:  # recorded on the part, which stays owed; the caller's answer stands
            logger.warning("purge part %s failed (%s); it stays owed", part_id, type(error).__name__)


def purge_part_run(*, part_id: int) -> str:
    """Do one part: lock it, run its purger, write its receipt and mark it done, all in one transaction, so a
    run killed halfway leaves it owed with nothing half-done, and a second run of a done part does nothing.
    Returns "done", "already_done", "busy" (another run holds it) or "gone". A purger that raises leaves the
    part owed with the error's type recorded, and the error propagates (the task is retried).

    A retention part (one with a category) runs in bounded batches instead: see `retention_part_run`."""
    if PurgePart.objects.filter(pk=part_id).exclude(category="").exists():
        return retention_part_run(part_id=part_id)
    try:
        with transaction.atomic():
            parts = PurgePart.objects.select_related("request", "organization").filter(pk=part_id)
            skip = connection.features.has_select_for_update_skip_locked
            part = parts.select_for_update(skip_locked=skip, of=("self",)).first()
            if part is None:
                return "busy" if PurgePart.objects.filter(pk=part_id).exists() else "gone"
            if part.status == PurgePart.Status.DONE:
                return "already_done"
            _do(part)
            return "done"
    except Exception as error:
        PurgePart.objects.filter(pk=part_id, status=PurgePart.Status.OWED).update(
            attempts=F("attempts") + 1, last_error=type(error).__name__[:200], dispatched_at=timezone.now()
        )
        raise


def _do(part: PurgePart) -> None:
    request = part.request
    purger = _PURGERS.get(part.purger)
    if purger is None:
        raise LookupError(f"no purger named {part.purger!r} is registered")
    counts = dict(part.counts)  # what its at_once step did when the request was recorded
    for name, count in purger.purge(_order(request)).items():
        counts[name] = counts.get(name, 0) + int(count)
    receipt = purge_receipt_record(
        organization=part.organization, reason=request.reason, counts=counts, subject_ref=request.subject_ref,
        purposes=request.purpose_list, request=request, purger=purger.name,
    )
    _part_finish(part, counts=counts, receipt=receipt)


def _part_finish(part: PurgePart, *, counts: dict[str, int], receipt: LedgerEntry) -> None:
    """Mark the part done with its counts and receipt (in the transaction that wrote the receipt); the last part
    of its request completes the request."""
    request = part.request
    now = timezone.now()
    PurgePart.objects.filter(pk=part.pk).update(
        status=PurgePart.Status.DONE, done_at=now, counts=counts, receipt_sequence=receipt.sequence,
        attempts=F("attempts") + 1,
    )
    # The request's row lock orders parts that finish side by side: the last one sees the others done.
    list(PurgeRequest.objects.select_for_update().filter(pk=request.pk).values_list("pk", flat=True))
    if not request.parts.filter(status=PurgePart.Status.OWED).exists():
        PurgeRequest.objects.filter(pk=request.pk).update(completed_at=now)
        _request_completed(request, organization=part.organization, now=now)


def _request_completed(request: PurgeRequest, *, organization: Organization, now: datetime) -> None:
    """The last part is done: the feed says so, and a data subject's erasure that ran through it is done."""
    if request.reason == PurgeRequest.Reason.SUBJECT_ERASED:
        erasure_finish(request, organization=organization)
    parts = {p.purger + (f":{p.category}" if p.category else ""): p.counts for p in request.parts.all()}
    event_emit(
        organization=organization, type=OutboxEvent.Type.PURGE_DONE, subject_ref=request.subject_ref,
        payload={"request": str(request.public_id), "reason": request.reason, "parts": parts},
    )
    for data_request in DataRequest.objects.filter(purge_request=request).exclude(state=DataRequest.State.DONE):
        DataRequest.objects.filter(pk=data_request.pk).update(state=DataRequest.State.DONE, completed_at=now)
        event_emit(
            organization=organization, type=OutboxEvent.Type.ERASURE_DONE, subject_ref=data_request.subject_ref,
            payload={"data_request": str(data_request.public_id), "purge_request": str(request.public_id)},
        )


# What the feed keeps naming an erased subject: the partner's own notice to erase it on their side (and the
# erasure's own purge.done, written after this step).
ERASURE_EVENT_TYPES = (OutboxEvent.Type.ERASURE_REQUESTED, OutboxEvent.Type.ERASURE_DONE)


def erasure_finish(request: PurgeRequest, *, organization: Organization) -> dict[str, int]:
    """Every part of an erasure is done, in the last one's transaction: the subject's grants go now (the other
    apps' rows pointed at them until their parts ran), then its public id is cut from every ledger entry, the
    receipts of this erasure included, and from the feed's earlier events. Its own receipt names the request, not
    the subject. Idempotent."""
    if request.subject_id is None or not request.subject_ref:
        return {}
    _, deleted = Grant.objects.filter(organization=organization, subject_id=request.subject_id).delete()
    grants = deleted.get(Grant._meta.label, 0)
    events = (
        OutboxEvent.objects.filter(organization=organization, subject_ref=request.subject_ref)
        .exclude(type__in=ERASURE_EVENT_TYPES).update(subject_ref="")
    )
    counts = {"grants_deleted": grants, "feed_events_cut": events}
    purge_receipt_record(organization=organization, reason=request.reason, counts=counts, request=request,
                         purger="consent.erasure_finish")
    counts["ledger_entries_cut"] = ledger_subject_cut(organization=organization, subject_ref=request.subject_ref)
    return counts


def purge_receipt_record(
    *,
    organization: Organization,
    reason: str,
    counts: dict[str, int],
    subject_ref: str = "",
    purposes: Iterable[str] = (),
    request: PurgeRequest | None = None,
    purger: str = "",
    detail: dict[str, str | None] | None = None,
) -> LedgerEntry:
    """A deletion receipt in the ledger: why and how much was purged, by which purger for which request, never
    what. Written in the transaction that deletes, so the receipt and the deletion commit together. `detail` adds
    named values that are no count (a retention part's category, cutoff and oldest remaining timestamp)."""
    payload: dict[str, object] = {"reason": reason, **{name: int(count) for name, count in counts.items()}}
    payload.update(detail or {})
    if request is not None:
        payload["request"] = str(request.public_id)
    if purger:
        payload["purger"] = purger
    return ledger_append(
        organization=organization,
        event=LedgerEntry.Event.PURGED,
        subject_ref=subject_ref,
        purposes=purposes_key(list(purposes)),
        payload=payload,
    )


def purge_parts_owed(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Owed parts not dispatched within REDISPATCH_AFTER: their message was lost, their worker killed, or their
    purger failed. Oldest first."""
    stale = (now or timezone.now()) - REDISPATCH_AFTER
    owed = PurgePart.objects.filter(status=PurgePart.Status.OWED)
    return list(
        owed.filter(dispatched_at__isnull=True).values_list("pk", flat=True)[:limit]
    ) + list(owed.filter(dispatched_at__lt=stale).order_by("dispatched_at").values_list("pk", flat=True)[:limit])


def purge_parts_redispatch(*, now: datetime | None = None) -> int:
    """Beat: send every stale owed part again. Returns how many were sent."""
    ids = purge_parts_owed(now=now)
    purge_parts_dispatch(part_ids=ids)
    return len(ids)




# Retention runs (consent.retention): beat records, per organization, one request with a part per purger and
# category that has rows past the period; each part deletes (or cuts) them in bounded batches, each batch its own
# short transaction, and writes one receipt when a batch finds nothing more.

# Far enough ahead that `expired(organization_id, FAR_FUTURE)` is every row a target governs.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def retention_targets(category: str) -> list[tuple[Purger, RetentionTarget]]:
    """Every registered purger's targets of `category`, purger by purger, each purger's in its declared order."""
    return [(p, target) for p in purgers() for target in p.retention if target.category == category]


def retention_cutoff(*, policy: RetentionPolicy, category: Category, now: datetime) -> datetime:
    """What is older than this is past the category's period: the policy's value, capped for its jurisdiction at
    run time (a stored value may exceed the cap of a jurisdiction chosen after it was saved)."""
    period, _ = effective_period(category, policy.period(category), policy.jurisdiction)
    return now - timedelta(seconds=category.seconds(period))


def retention_oldest(
    *, organization_id: int, category: str, floors: dict[int, object] | None = None
) -> datetime | None:
    """The oldest timestamp among the organization's rows of `category` that a retention run would still delete
    or cut one day (cut rows are excluded by the targets' querysets): index-backed min() per target. `floors`
    (by id() of the target: where a run that just deleted its rows ended) starts the scan there, past the
    index entries of the rows it deleted (they stay until vacuum, and would make min() walk all of them)."""
    oldest = []
    for _, target in retention_targets(category):
        rows = target.expired(organization_id, FAR_FUTURE)
        floor = (floors or {}).get(id(target))
        if floor is not None:
            rows = rows.filter(**{f"{target.timestamp}__gte": floor})
        oldest.append(rows.aggregate(oldest=Min(target.timestamp))["oldest"])
    found = [value for value in oldest if value is not None]
    return min(found) if found else None


def retention_run(*, now: datetime | None = None) -> list[PurgeRequest]:
    """Beat, hourly: for each organization, one purge request (retention_period_ended, `before` the run's time)
    with one part per (purger, category) that has rows past the organization's period (a cheap EXISTS each), and
    its parts dispatched after commit. A (purger, category) whose part from an earlier run is still owed is left
    to it (beat's redispatch continues it). Nothing due, no request."""
    now = now or timezone.now()
    recorded = []
    for organization in Organization.objects.order_by("pk").iterator():
        policy = retention_policy_in_force(organization=organization)
        owed = set(
            PurgePart.objects.filter(organization=organization, status=PurgePart.Status.OWED)
            .exclude(category="").values_list("purger", "category")
        )
        due: list[tuple[str, str]] = []
        for category in CATEGORIES:
            before = retention_cutoff(policy=policy, category=category, now=now)
            for purger in purgers():
                targets = [t for t in purger.retention if t.category == category.key]
                if not targets or (purger.name, category.key) in owed or (purger.name, category.key) in due:
                    continue
                if any(t.expired(organization.pk, before).exists() for t in targets):
                    due.append((purger.name, category.key))
        if not due:
            continue
        with transaction.atomic():
            request = PurgeRequest.objects.create(
                organization=organization, reason=PurgeRequest.Reason.RETENTION_PERIOD_ENDED, before=now,
            )
            parts = PurgePart.objects.bulk_create([
                PurgePart(organization=organization, request=request, purger=name, category=key) for name, key in due
            ])
            _dispatch_after_commit(request, parts, at_once=False)
        recorded.append(request)
    return recorded


# Timings of the retention batches in this process, for the bench (the longest transaction is the longest that
# a batch's row locks are held). Callbacks get (category, seconds, the batch's counts).
_batch_observers: list[Callable[[str, float, dict[str, int]], None]] = []


@contextmanager
def retention_batches_observed(callback: Callable[[str, float, dict[str, int]], None]) -> Iterator[None]:
    """Call `callback(category, seconds, counts)` after each retention batch's transaction while inside."""
    _batch_observers.append(callback)
    try:
        yield
    finally:
        _batch_observers.remove(callback)


def retention_part_run(*, part_id: int) -> str:
    """Do one retention part in batches of at most VISAGE_RETENTION_BATCH rows, each its own transaction: lock the
    part row (skipping it when another runner holds it: "busy"), delete or cut a batch of the first target that
    has rows left, add the counts to the part, commit. The batch that finds nothing writes the receipt (category,
    counts, cutoff, oldest remaining timestamp; never content) and marks the part done in that same transaction,
    so a second runner finds it done. Killed or failing halfway, the part stays owed with the counts of the
    batches that committed, and its next run continues. Past VISAGE_RETENTION_PART_SECONDS it stops ("continues")
    and leaves itself to beat's redispatch, well before the task's soft time limit."""
    part = PurgePart.objects.select_related("request", "organization").filter(pk=part_id).first()
    if part is None:
        return "gone"
    if part.status == PurgePart.Status.DONE:
        return "already_done"
    purger = _PURGERS.get(part.purger)
    if purger is None:
        raise LookupError(f"no purger named {part.purger!r} is registered")
    category = CATEGORY_BY_KEY[part.category]
    targets = [t for t in purger.retention if t.category == category.key]
    policy = retention_policy_in_force(organization=part.organization)
    before = retention_cutoff(policy=policy, category=category, now=part.request.before or timezone.now())
    most = settings.VISAGE_RETENTION_BATCH
    limit = most
    deadline = time.monotonic() + settings.VISAGE_RETENTION_PART_SECONDS
    skip = connection.features.has_select_for_update_skip_locked
    # Per target (by id()): the newest timestamp deleted so far; the next batch starts there.
    floors: dict[int, object] = {}
    try:
        while True:
            if time.monotonic() > deadline:
                # Beat's next redispatch sends it again at once (no dispatch time: not stale, just unsent).
                PurgePart.objects.filter(pk=part_id, status=PurgePart.Status.OWED).update(dispatched_at=None)
                return "continues"
            started = time.monotonic()
            with transaction.atomic():
                locked = (
                    PurgePart.objects.select_related("request", "organization").filter(pk=part_id)
                    .select_for_update(skip_locked=skip, of=("self",)).first()
                )
                if locked is None:
                    return "busy" if PurgePart.objects.filter(pk=part_id).exists() else "gone"
                if locked.status == PurgePart.Status.DONE:
                    return "already_done"
                batch = _retention_batch(targets, organization_id=part.organization_id, before=before, limit=limit,
                                         floors=floors)
                if not batch:
                    _retention_part_finish(locked, purger=purger, category=category, before=before, floors=floors)
                    _observe(category.key, time.monotonic() - started, {})
                    return "done"
                counts = dict(locked.counts)
                for name, count in batch.items():
                    counts[name] = counts.get(name, 0) + count
                # The dispatch time doubles as a heartbeat: beat does not send a part again while it is running.
                PurgePart.objects.filter(pk=part_id).update(counts=counts, dispatched_at=timezone.now())
            elapsed = time.monotonic() - started
            _observe(category.key, elapsed, batch)
            # Row locks last as long as a batch: a slow table (a frame's foreign keys are checked row by row) gets
            # smaller batches, so that no batch holds its rows much beyond BATCH_SECONDS.
            if elapsed > BATCH_SECONDS:
                limit = max(MIN_BATCH, int(limit * BATCH_SECONDS / elapsed))
            elif elapsed < BATCH_SECONDS / 2:
                limit = min(most, limit * 2)
    except Exception as error:
        PurgePart.objects.filter(pk=part_id, status=PurgePart.Status.OWED).update(
            attempts=F("attempts") + 1, last_error=type(error).__name__[:200], dispatched_at=timezone.now()
        )
        raise


# A batch's transaction aims under half a second (its row locks last that long); never fewer rows than this.
BATCH_SECONDS = 0.5
MIN_BATCH = 500


def _observe(category: str, seconds: float, counts: dict[str, int]) -> None:
    for observe in list(_batch_observers):
        observe(category, seconds, counts)


def _retention_batch(
    targets: list[RetentionTarget], *, organization_id: int, before: datetime, limit: int, floors: dict[int, object]
) -> dict[str, int]:
    """One batch of the first target (in declared order) that still has rows past the cutoff; {} when none has.
    A delete resumes at its target's floor (rows older than it are gone, unless another runner held them locked:
    those it deletes itself, or a later run finds them)."""
    for target in targets:
        rows = target.expired(organization_id, before)
        if floors.get(id(target)) is not None:
            rows = rows.filter(**{f"{target.timestamp}__gte": floors[id(target)]})
        batch = rows_batch_purge(rows, limit=limit, cut=target.cut,
                                 order_by=None if target.cut else target.timestamp)
        if batch.counts:
            if batch.last is not None:
                floors[id(target)] = batch.last
            return batch.counts
    return {}


def _retention_part_finish(
    part: PurgePart, *, purger: Purger, category: Category, before: datetime, floors: dict[int, object]
) -> None:
    oldest = retention_oldest(organization_id=part.organization_id, category=category.key, floors=floors)
    receipt = purge_receipt_record(
        organization=part.organization, reason=part.request.reason, counts=part.counts, request=part.request,
        purger=purger.name,
        detail={"category": category.key, "cutoff": before.isoformat(),
                "oldest_remaining": oldest.isoformat() if oldest else None},
    )
    _part_finish(part, counts=part.counts, receipt=receipt)
