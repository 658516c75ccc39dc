"""Writes of segments: definitions saved after validation, members computed in the database (a full recompute,
one subject brought up to date, a static snapshot or an uploaded list), exports with their ledger entry.

Every change of membership is a row's entry or exit time, never a delete, so the size at any time and who
entered since are answered from the rows (segments.selectors). Runs of one segment serialize on its row."""

from __future__ import annotations

import csv
import functools
import io
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization
from consent.ledger import ledger_append
from consent.models import LedgerEntry, Subject
from consent.services import partner_ref_hash
from segments import sources
from segments.compiler import members_query, subject_meets
from segments.conditions import (
    ConditionError,
    is_face_based,
    referenced_segments,
    uses_emotion,
    validate_definition,
)
from segments.models import (
    KEY_MAX_LENGTH,
    MAX_CADENCE_SECONDS,
    MIN_CADENCE_SECONDS,
    AudienceExportRecipient,
    Segment,
    SegmentMembership,
    SegmentRun,
)
from segments.selectors import segment_shareable_members

# A run may take this share of the time between runs at most: a definition that takes 6 s is run every 2 min.
CADENCE_LOAD_SHARE = 0.05
MAX_UPLOAD_IDS = 100_000
MAX_PARTNER_ID_LENGTH = 200
MAX_MATCH_IDS = 10_000
KEY_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
# Names of the API's own paths beside the segments' (/api/v1/segments/preview/): a segment keyed so is unreachable.
RESERVED_KEYS = frozenset({"preview", "fields"})


class SegmentError(ValueError):
    """A request about a segment that cannot be done; `path` names the field, node or line, `code` the kind."""

    def __init__(self, path: str, message: str, *, code: str = "invalid") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.code = code


# --- definitions -------------------------------------------------------------------------------------------------


def _definitions(organization_id: int) -> dict[str, Mapping]:
    return dict(Segment.objects.filter(organization_id=organization_id).values_list("key", "definition"))


def _reaches(start: Iterable[str], target: str, definitions: Mapping[str, Mapping]) -> bool:
    """Whether following segment references from `start` comes back to `target`."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        key = todo.pop()
        if key == target:
            return True
        if key in seen:
            continue
        seen.add(key)
        todo.extend(referenced_segments(definitions.get(key) or {}))
    return False


def definition_check(
    *, organization_id: int, definition: Any, key: str | None = None, path: str = "definition",
) -> dict:
    """The definition validated for the organization (other segments and campaigns must be its own), with the
    segment `key` being saved not reachable from itself. ConditionError names the node."""
    definitions = _definitions(organization_id)
    known_campaigns: dict[int, bool] = {}

    def campaign_known(campaign_id: int) -> bool:
        if campaign_id not in known_campaigns:
            known_campaigns[campaign_id] = campaign_id in sources.campaigns_known(organization_id, [campaign_id])
        return known_campaigns[campaign_id]

    tree = validate_definition(
        definition, path=path, campaign_known=campaign_known,
        segment_known=lambda other: other in definitions or other == key,  # naming itself: refused below as a cycle
    )
    if key is not None:
        for leaf_path, other in _segment_leaves(tree, path):
            if other == key or _reaches([other], key, definitions):
                raise ConditionError(leaf_path, f"segment {other} refers back to {key}: a cycle")
    return tree


def _segment_leaves(tree: Mapping, path: str) -> Iterable[tuple[str, str]]:
    for kind in ("all", "any"):
        if kind in tree:
            for i, child in enumerate(tree[kind]):
                yield from _segment_leaves(child, f"{path}.{kind}[{i}]")
            return
    if "not" in tree:
        yield from _segment_leaves(tree["not"], f"{path}.not")
        return
    if tree.get("field") == "segment":
        for i, other in enumerate(tree["value"]):
            yield f"{path}.value[{i}]", other


def _inherited(organization_id: int, tree: Mapping, flag: str) -> bool:
    """Whether a segment it names is face-based (or emotion-based): their members need the same consent."""
    others = referenced_segments(tree)
    return bool(others) and Segment.objects.filter(
        organization_id=organization_id, key__in=others, **{flag: True}
    ).exists()


def segment_check(
    *, organization: Organization, key: str, name: str, kind: str = Segment.Kind.DYNAMIC,
    definition: Any = None, segment: Segment | None = None,
) -> dict:
    """What `segment_save` would refuse, without writing (a form shows it at the field): SegmentError naming
    the field, or ConditionError naming the node. Returns the canonical definition."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise SegmentError("key", f"a key is 1 to {KEY_MAX_LENGTH} lower-case letters, digits, - or _")
    if key in RESERVED_KEYS:
        raise SegmentError("key", f"{key} is reserved: choose another key")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise SegmentError("name", "a name is 1 to 200 characters")
    if kind not in Segment.Kind.values:
        raise SegmentError("kind", f"kind is one of {', '.join(Segment.Kind.values)}")
    if segment is not None and segment.kind != kind:
        raise SegmentError("kind", "the kind of a segment cannot change: create a new one", code="conflict")
    taken = Segment.objects.filter(organization=organization, key=key)
    if segment is not None:
        taken = taken.exclude(pk=segment.pk)
    if taken.exists():
        raise SegmentError("key", "another segment of this organization has this key", code="conflict")
    if segment is not None and key != segment.key and _referenced_by_others(segment):
        raise SegmentError("key", "other segments name this key: change them first", code="conflict")
    if definition in (None, {}) and kind == Segment.Kind.STATIC:
        return {}
    return definition_check(organization_id=organization.pk, definition=definition, key=key)


def segment_save(
    *, organization: Organization, key: str, name: str, kind: str = Segment.Kind.DYNAMIC,
    definition: Any = None, description: str = "", segment: Segment | None = None,
) -> Segment:
    """Create (segment None) or change a segment. A dynamic segment needs a definition; a static one may have
    none (its members come from an upload). A changed definition is recomputed at the next beat."""
    tree = segment_check(organization=organization, key=key, name=name, kind=kind, definition=definition,
                         segment=segment)
    with transaction.atomic():
        if segment is None:
            segment = Segment(organization=organization)
        changed = segment.definition != tree
        segment.key, segment.name, segment.kind = key, name.strip(), kind
        segment.description, segment.definition = description or "", tree
        inherited = functools.partial(_inherited, organization.pk, tree)
        segment.face_based = bool(tree) and (is_face_based(tree) or inherited("face_based"))
        segment.emotion_based = bool(tree) and (uses_emotion(tree) or inherited("emotion_based"))
        if changed:
            segment.next_run_at = timezone.now()
        segment.save()
    return segment


def _referenced_by_others(segment: Segment) -> bool:
    return any(
        segment.key in referenced_segments(tree)
        for other, tree in _definitions(segment.organization_id).items() if other != segment.key and tree
    )


def segment_delete(*, segment: Segment) -> None:
    """Delete a segment and its history; refused while another segment names it."""
    if _referenced_by_others(segment):
        raise SegmentError("key", "other segments name this segment: change them first", code="conflict")
    segment.delete()


def segment_preview(*, organization_id: int, definition: Any, now: datetime | None = None) -> int:
    """How many subjects meet `definition` now, without saving anything."""
    tree = definition_check(organization_id=organization_id, definition=definition)
    face_based = is_face_based(tree) or _inherited(organization_id, tree, "face_based")
    return members_query(tree, organization_id=organization_id, now=now or timezone.now(),
                         face_based=face_based).count()


# --- members -----------------------------------------------------------------------------------------------------


def next_cadence(duration_ms: int) -> int:
    """Seconds until the next run: a run takes at most CADENCE_LOAD_SHARE of the time, within the bounds."""
    wanted = int(duration_ms / 1000 / CADENCE_LOAD_SHARE)
    return max(MIN_CADENCE_SECONDS, min(MAX_CADENCE_SECONDS, wanted))


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# A full run's memory for its sorts and hashes on PostgreSQL (its transaction only).
RUN_WORK_MEM = "256MB"
# The subjects a run chose, kept for its two statements; created and dropped inside the run's transaction.
_CHOSEN = "segment_run_chosen"


def _replace_members(segment: Segment, subjects: Any, now: datetime, *, exit_reason: str) -> tuple[int, int]:
    """Make the open memberships of `segment` exactly the subjects of the queryset `subjects`: the query runs once,
    into a temporary table, then those no longer in it exit and those new to it enter, one statement each.
    Returns (entered, exited)."""
    try:
        sql, params = subjects.values("pk").query.sql_with_params()
    except EmptyResultSet:  # a definition no subject can meet (an age band outside every band): nobody is chosen
        sql, params = None, ()
    members, chosen = _table(SegmentMembership), connection.ops.quote_name(_CHOSEN)
    postgres = connection.vendor == "postgresql"
    when = connection.ops.adapt_datetimefield_value(now)  # as the ORM writes it: SQLite compares text
    with connection.cursor() as cursor:
        if postgres:
            # The grouped subqueries hash up to every subject of the organization: in memory, not in batches on
            # disk as with the server's default of 4 MB; for this transaction only.
            cursor.execute(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'")
        cursor.execute(f"CREATE TEMPORARY TABLE {chosen} (subject_id bigint PRIMARY KEY)")
        if sql is not None:
            cursor.execute(f"INSERT INTO {chosen} (subject_id) {sql}", params)  # noqa: S608 - the ORM's SQL, values bound
        if postgres:
            cursor.execute(f"ANALYZE {chosen}")  # the two statements below join it: plan them on its real size
        cursor.execute(
            f"UPDATE {members} SET exited_at = %s, exit_reason = %s "  # noqa: S608 - names from the models
            f"WHERE segment_id = %s AND exited_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {chosen} c WHERE c.subject_id = {members}.subject_id)",
            [when, exit_reason, segment.pk],
        )
        exited = max(cursor.rowcount, 0)
        cursor.execute(
            f"INSERT INTO {members} "  # noqa: S608 - names from the models, values bound
            "(organization_id, segment_id, subject_id, entered_at, exited_at, exit_reason) "
            f"SELECT %s, %s, c.subject_id, %s, NULL, '' FROM {chosen} c WHERE NOT EXISTS ("
            f"SELECT 1 FROM {members} m WHERE m.segment_id = %s AND m.exited_at IS NULL "
            "AND m.subject_id = c.subject_id)",
            [segment.organization_id, segment.pk, when, segment.pk],
        )
        entered = max(cursor.rowcount, 0)
        cursor.execute(f"DROP TABLE {chosen}")  # on an error, the transaction's rollback takes it away
    return entered, exited


def _record_run(segment: Segment, kind: str, started: datetime, clock: float, entered: int, exited: int,
                details: dict | None = None) -> SegmentRun:
    duration_ms = int((time.perf_counter() - clock) * 1000)
    size = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count()
    run = SegmentRun.objects.create(
        organization_id=segment.organization_id, segment=segment, kind=kind, started_at=started,
        duration_ms=duration_ms, size=size, entered=entered, exited=exited, details=details or {},
    )
    cadence = next_cadence(duration_ms)
    Segment.objects.filter(pk=segment.pk).update(
        size=size, last_run_at=started, last_run_ms=duration_ms, cadence_seconds=cadence,
        next_run_at=started + timedelta(seconds=cadence),
    )
    return run


def segment_recompute(*, segment_id: int, now: datetime | None = None) -> SegmentRun | None:
    """Recompute a dynamic segment's members in the database; None for a static or missing segment."""
    now = now or timezone.now()
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id, kind=Segment.Kind.DYNAMIC).first()
        if segment is None or not segment.definition:
            return None
        clock = time.perf_counter()
        subjects = members_query(segment.definition, organization_id=segment.organization_id, now=now,
                                 face_based=segment.face_based)
        entered, exited = _replace_members(segment, subjects, now, exit_reason=SegmentMembership.ExitReason.LEFT)
        return _record_run(segment, SegmentRun.Kind.FULL, now, clock, entered, exited)


def segment_snapshot(*, segment: Segment, now: datetime | None = None) -> SegmentRun:
    """Take a static segment's members from its definition, now; the previous members are replaced."""
    if segment.kind != Segment.Kind.STATIC:
        raise SegmentError("kind", "only a static segment takes a snapshot; a dynamic one recomputes itself",
                           code="conflict")
    if not segment.definition:
        raise SegmentError("definition", "the segment has no definition to take a snapshot of")
    now = now or timezone.now()
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        clock = time.perf_counter()
        subjects = members_query(segment.definition, organization_id=segment.organization_id, now=now,
                                 face_based=segment.face_based)
        entered, exited = _replace_members(segment, subjects, now, exit_reason=SegmentMembership.ExitReason.REPLACED)
        return _record_run(segment, SegmentRun.Kind.SNAPSHOT, now, clock, entered, exited)


def partner_ids_parse(text: str) -> list[str]:
    """One partner user id per line (a CSV of one column; a header line `partner_user_id` is skipped; spaces
    around an id are dropped), checked by `partner_ids_checked`. SegmentError names the first bad line."""
    if not isinstance(text, str):
        raise SegmentError("upload", "the upload is text: one partner user id per line")
    rows: list[tuple[str, str]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text.removeprefix("\ufeff"))), start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != 1:
            raise SegmentError(f"upload.line[{number}]", "one id per line, without commas")
        value = row[0].strip()
        if number == 1 and value == "partner_user_id":
            continue
        rows.append((f"upload.line[{number}]", value))
    return partner_ids_checked(rows, where="upload")


def partner_ids_checked(rows: Sequence[tuple[str, object]], *, where: str = "ids") -> list[str]:
    """The ids of (path, value) rows as given (a JSON list's `ids[2]`, an upload's `upload.line[3]`): each 1 to
    MAX_PARTNER_ID_LENGTH printable characters, none twice, at most MAX_UPLOAD_IDS, at least one."""
    ids: list[str] = []
    seen: dict[str, str] = {}
    for path, value in rows:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_PARTNER_ID_LENGTH or not value.isprintable():
            raise SegmentError(path, f"an id is 1 to {MAX_PARTNER_ID_LENGTH} printable characters")
        if value in seen:
            raise SegmentError(path, f"this id is at {seen[value]} already")
        seen[value] = path
        ids.append(value)
        if len(ids) > MAX_UPLOAD_IDS:
            raise SegmentError(path, f"an upload holds at most {MAX_UPLOAD_IDS} ids")
    if not ids:
        raise SegmentError(where, "the upload has no ids")
    return ids


def segment_upload(
    *, segment: Segment, text: str | None = None, ids: Sequence[object] | None = None, now: datetime | None = None
) -> SegmentRun:
    """Make a static segment's members the subjects the partner knows by the ids of `text` (lines) or `ids` (a
    list, taken as given), matched by their keyed hash; the ids themselves are not kept. Ids of no subject are
    counted, not created."""
    if segment.kind != Segment.Kind.STATIC:
        raise SegmentError("kind", "only a static segment takes an uploaded list", code="conflict")
    if ids is not None:
        ids = partner_ids_checked([(f"ids[{index}]", value) for index, value in enumerate(ids)])
    else:
        ids = partner_ids_parse(text)
    now = now or timezone.now()
    organization = segment.organization
    hashes = [partner_ref_hash(organization=organization, partner_user_id=value) for value in ids]
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        clock = time.perf_counter()
        subjects = Subject.objects.filter(
            organization_id=segment.organization_id, erased_at__isnull=True, partner_ref_hash__in=hashes,
        )
        matched = subjects.count()
        entered, exited = _replace_members(segment, subjects, now, exit_reason=SegmentMembership.ExitReason.REPLACED)
        return _record_run(segment, SegmentRun.Kind.UPLOAD, now, clock, entered, exited,
                           details={"ids": len(ids), "matched": matched, "unmatched": len(ids) - matched})


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    """Segments that others name come first, so one pass brings a subject up to date in all of them."""
    by_key = {segment.key: segment for segment in segments}
    done: dict[str, Segment] = {}

    def visit(segment: Segment, depth: int = 0) -> None:
        if segment.key in done or depth > len(by_key):
            return
        for other in sorted(referenced_segments(segment.definition or {})):
            if other in by_key:
                visit(by_key[other], depth + 1)
        done[segment.key] = segment

    for segment in segments:
        visit(segment)
    return list(done.values())


def _is_open_member(segment_id: int, subject_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {_table(SegmentMembership)} WHERE segment_id = %s AND subject_id = %s "  # noqa: S608
            "AND exited_at IS NULL", [segment_id, subject_id],
        )
        return cursor.fetchone() is not None


def segment_refresh_subject(*, organization_id: int, subject_id: int, now: datetime | None = None) -> dict[str, str]:
    """Bring one subject's membership of every dynamic segment of the organization up to date (its features or
    events changed). Returns {segment key: "entered" | "exited"} for the changes."""
    now = now or timezone.now()
    segments = list(Segment.objects.filter(organization_id=organization_id, kind=Segment.Kind.DYNAMIC)
                    .exclude(definition={}).only("pk", "key", "definition", "face_based").order_by())
    changes: dict[str, str] = {}
    for segment in _dependency_order(segments):
        meets = subject_meets(segment.definition, organization_id=organization_id, now=now, subject_id=subject_id,
                              face_based=segment.face_based)
        if meets == _is_open_member(segment.pk, subject_id):
            continue  # nothing to change: the usual answer, without a transaction
        with transaction.atomic():
            open_rows = SegmentMembership.objects.filter(segment=segment, subject_id=subject_id,
                                                         exited_at__isnull=True)
            if meets and not open_rows.exists():
                try:
                    with transaction.atomic():
                        SegmentMembership.objects.create(organization_id=organization_id, segment=segment,
                                                         subject_id=subject_id, entered_at=now)
                except IntegrityError:  # a full run entered it at the same time
                    continue
                Segment.objects.filter(pk=segment.pk).update(size=F("size") + 1)
                changes[segment.key] = "entered"
            elif not meets and open_rows.update(exited_at=now, exit_reason=SegmentMembership.ExitReason.LEFT):
                Segment.objects.filter(pk=segment.pk, size__gt=0).update(size=F("size") - 1)
                changes[segment.key] = "exited"
    return changes


def segments_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """The dynamic segments whose next run is due, oldest due first."""
    return list(
        Segment.objects.filter(kind=Segment.Kind.DYNAMIC, next_run_at__lte=now or timezone.now())
        .exclude(definition={}).order_by("next_run_at").values_list("pk", flat=True)[:limit]
    )


# --- exports -----------------------------------------------------------------------------------------------------


def _export_recorded(segment: Segment, *, what: str, count: int, requested_by: str, fmt: str,
                     subject_ids: Iterable[int] = ()) -> LedgerEntry:
    """The export's ledger entry (counts only), and which subjects it named, in bulk (AudienceExportRecipient)."""
    entry = ledger_append(
        organization=segment.organization, event=LedgerEntry.Event.EXPORTED, context_ref=f"segment:{segment.pk}",
        payload={"what": what, "segment": segment.key, "count": count, "format": fmt, "requested_by": requested_by},
    )
    AudienceExportRecipient.objects.bulk_create(
        (AudienceExportRecipient(organization_id=segment.organization_id, subject_id=subject_id, segment=segment,
                                 segment_key=segment.key, what=what, ledger_sequence=entry.sequence,
                                 requested_by=requested_by[:80], exported_at=entry.occurred_at)
         for subject_id in subject_ids if subject_id is not None),
        batch_size=5000,
    )
    return entry


def segment_export(
    *, segment: Segment, requested_by: str, fmt: str = "json", now: datetime | None = None,
) -> tuple[list[dict], LedgerEntry]:
    """The members an export may name (live partner-sharing consent): pseudonymous ids, when they entered, and
    whether the partner knows them by its own id. No feature value. The ledger records who, when, which, how
    many, in the same transaction."""
    with transaction.atomic():
        rows, subject_ids = [], []
        for pk, public_id, entered_at, linked in segment_shareable_members(segment=segment, now=now).values_list(
            "subject_id", "subject__public_id", "entered_at", "subject__partner_ref_hash",
        ).iterator(chunk_size=5000):
            rows.append({"subject_id": str(public_id), "entered_at": entered_at.isoformat(),
                         "partner_linked": bool(linked)})
            subject_ids.append(pk)
        entry = _export_recorded(segment, what="members", count=len(rows), requested_by=requested_by, fmt=fmt,
                                 subject_ids=subject_ids)
    return rows, entry


def segment_members_listed(*, segment: Segment, count: int, requested_by: str,
                           subject_ids: Iterable[int] = ()) -> LedgerEntry:
    """Record that a page of `count` shareable members (`subject_ids`) was read through the API: a page of members
    leaves Visage as an export does, so each one is in the ledger too."""
    return _export_recorded(segment, what="members_page", count=count, requested_by=requested_by, fmt="json",
                            subject_ids=subject_ids)


EXPORT_COLUMNS = ("subject_id", "entered_at", "partner_linked")


def export_csv(rows: list[dict]) -> str:
    """`segment_export`'s rows as CSV (the admin's download and the API's), partner_linked as true / false."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "partner_linked": "true" if row["partner_linked"] else "false"} for row in rows)
    return out.getvalue()


def segment_match(
    *, segment: Segment, partner_user_ids: Any, requested_by: str, now: datetime | None = None,
) -> tuple[list[str], LedgerEntry]:
    """Which of the partner's own user ids (sent with the request, hashed here and never kept) are members with
    live partner-sharing consent: how a partner maps an audience back to its users although Visage holds only
    the keyed hash of their ids."""
    if not isinstance(partner_user_ids, list) or not 1 <= len(partner_user_ids) <= MAX_MATCH_IDS:
        raise SegmentError("partner_user_ids", f"a list of 1 to {MAX_MATCH_IDS} ids")
    by_hash: dict[str, str] = {}
    for i, value in enumerate(partner_user_ids):
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_PARTNER_ID_LENGTH:
            raise SegmentError(f"partner_user_ids[{i}]", f"an id is 1 to {MAX_PARTNER_ID_LENGTH} characters")
        digest = partner_ref_hash(organization=segment.organization, partner_user_id=value)
        if digest in by_hash:
            raise SegmentError(f"partner_user_ids[{i}]", "this id is in the list already")
        by_hash[digest] = value
    with transaction.atomic():
        found = list(segment_shareable_members(segment=segment, now=now).filter(
            subject__partner_ref_hash__in=list(by_hash)
        ).values_list("subject__partner_ref_hash", "subject_id"))
        matched = sorted(by_hash[digest] for digest, _ in found)
        entry = _export_recorded(segment, what="partner_match", count=len(matched), requested_by=requested_by,
                                 fmt="json", subject_ids=[pk for _, pk in found])
    return matched, entry
