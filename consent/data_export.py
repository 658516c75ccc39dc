"""A subject's export (GDPR Art. 15, 20): one JSON document of everything kept about the subject, streamed.

The document walks the same registry as the purges (consent.purging.purgers()): each purger's `export` yields the
subject's rows of its own tables, so what an erasure deletes and what an export names are the same list, and a
table added without both fails tests/test_subject_data_complete.py. Rows are read in chunks and written as they
come, so a subject with a long history never sits in memory as a whole.

    {"format": "visage-subject-export/1", "generated_at": "...", "subject": {...},
     "sections": {"<app_label.Model>": [row, ...], ...},
     "consent_history": [ledger entry, ...], "purge_receipts": [ledger entry, ...], "data_requests": [...]}
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections, models
from django.db.models import Count, F, Max, Min, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from accounts.models import Organization
from consent.models import DataRequest, LedgerEntry, Subject
from consent.purging import ExportRow, purgers
from consent.selectors import data_request_list, data_request_parts

EXPORT_FORMAT = "visage-subject-export/1"
CHUNK_ROWS = 2000
# A chunk of text handed to the response once it is about this long: few, large writes.
CHUNK_CHARS = 64 * 1024


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):  # no table holds pixels; a binary column never goes out raw
        raise TypeError("binary column in a subject export")
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


_encode = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":")).encode


class RowJSON(Mapping):
    """A row that the database already wrote as one JSON object (PostgreSQL's row_to_json): the stream copies its
    text as it is, and it reads as the row's dict where something looks inside (parsed on first access)."""

    __slots__ = ("text", "_parsed")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed: dict[str, Any] | None = None

    def _row(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = json.loads(self.text)
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._row()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._row())

    def __len__(self) -> int:
        return len(self._row())


def export_rows(label: str, queryset: QuerySet, *, omit: Iterable[str] = (), extra: Iterable[str] = ()
                ) -> Iterator[ExportRow]:
    """Every row of `queryset` as (label, row), in id order: its concrete columns (foreign keys as `<name>_id`) but
    `omit`, plus `extra` lookups (`segment__key`), read in chunks. On PostgreSQL the database writes each row's
    JSON (a RowJSON; 100,000 rows in about a second, where building and encoding dicts takes several); elsewhere
    they are values() dicts. The purgers' `export` are made of these."""
    skip = set(omit)
    fields = [f.attname for f in queryset.model._meta.concrete_fields if f.attname not in skip and f.name not in skip]
    values = queryset.values(*fields, **{name: F(name) for name in extra})
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        for row in values.order_by("pk").iterator(chunk_size=CHUNK_ROWS):
            yield label, row
        return
    sql, params = values.order_by().query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(r)::text FROM ({sql}) r ORDER BY r.id", params)  # noqa: S608 (ORM SQL)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            for (text,) in rows:
                yield label, RowJSON(text)


def _row_text(row: Mapping[str, Any]) -> str:
    return row.text if isinstance(row, RowJSON) else _encode(row)


def _subject_summary(subject: Subject) -> dict[str, Any]:
    return {
        "id": str(subject.public_id),
        "organization": subject.organization.slug,
        "created_at": subject.created_at,
        "erased_at": subject.erased_at,
        "partner_linked": bool(subject.partner_ref_hash),
    }


LEDGER_FIELDS = ("sequence", "event", "occurred_at", "purposes", "notice_hash", "language", "channel", "context_ref",
                 "evidence", "payload", "prev_hash", "hash")


def subject_ledger_entries(*, organization: Organization, subject: Subject, receipts: bool) -> QuerySet:
    """The subject's ledger entries in chain order: its consent history (receipts=False) or its purge receipts."""
    entries = LedgerEntry.objects.for_organization(organization).filter(subject_ref=str(subject.public_id))
    if receipts:
        entries = entries.filter(event=LedgerEntry.Event.PURGED)
    else:
        entries = entries.exclude(event=LedgerEntry.Event.PURGED)
    return entries.order_by("sequence")


def data_request_document(request: DataRequest) -> dict[str, Any]:
    """A data request as the export and the API show it: kind, state, dates, who asked, and an erasure's parts."""
    parts = [{"purger": p.purger, "status": p.status, "done_at": p.done_at}
             for p in data_request_parts(request=request)]
    return {
        "id": str(request.public_id), "kind": request.kind, "state": request.state, "channel": request.channel,
        "requested_by": request.requested_by, "received_at": request.received_at, "due_at": request.due_at,
        "started_at": request.started_at, "completed_at": request.completed_at, "parts": parts,
    }


def _array(items: Iterable[Any]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield _encode(item) if first else "," + _encode(item)
        first = False
    yield "]"


def _sections(organization: Organization, subject: Subject) -> Iterator[str]:
    """`"sections": {...}` from every purger's export, one key per model label, every claimed model present."""
    yield '"sections":{'
    first_section = True
    for purger in purgers():
        open_label: str | None = None
        written: set[str] = set()
        rows = purger.export(organization.pk, subject.pk) if purger.export is not None else ()
        for label, row in rows:
            if label != open_label:
                if label in written or label not in purger.models:
                    raise ValueError(f"purger {purger.name} exported {label} out of turn or unclaimed")
                if open_label is not None:
                    yield "],"
                elif not first_section:
                    yield ","
                yield _encode(label) + ":["
                open_label, first_row, first_section = label, True, False
                written.add(label)
            yield _row_text(row) if first_row else "," + _row_text(row)
            first_row = False
        if open_label is not None:
            yield "]"
        for label in purger.models:  # a category with no rows is named too: the export says it is empty
            if label not in written:
                yield ("" if first_section else ",") + _encode(label) + ":[]"
                first_section = False
    yield "}"


def _document(organization: Organization, subject: Subject, now: dt.datetime) -> Iterator[str]:
    yield "{"
    yield f'"format":{_encode(EXPORT_FORMAT)},"generated_at":{_encode(now)},"subject":'
    yield _encode(_subject_summary(subject)) + ","
    yield from _sections(organization, subject)
    for key, receipts in (("consent_history", False), ("purge_receipts", True)):
        yield f',"{key}":'
        entries = subject_ledger_entries(organization=organization, subject=subject, receipts=receipts)
        yield from _array(entries.values(*LEDGER_FIELDS).iterator(chunk_size=CHUNK_ROWS))
    yield ',"data_requests":'
    requests = data_request_list(organization=organization, subject=subject).order_by("received_at", "pk")
    yield from _array(data_request_document(r) for r in requests)
    yield "}"


def subject_export_stream(*, organization: Organization, subject: Subject, now: dt.datetime | None = None
                          ) -> Iterator[str]:
    """The subject's export as text chunks of one JSON document (about CHUNK_CHARS each), read lazily: hand it
    to a StreamingHttpResponse. The subject must be the organization's."""
    if subject.organization_id != organization.pk:
        raise ValueError("subject of another organization")
    buffer: list[str] = []
    size = 0
    for piece in _document(organization, subject, now or timezone.now()):
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


# The column whose range a category's summary shows: the first of these a table has.
_SUMMARY_TIMES = ("analyzed_at", "received_at", "entered_at", "started_at", "granted_at", "updated_at", "created_at")


@dataclass(frozen=True)
class CategorySummary:
    """What is kept of one table about a subject: how many rows, from when to when."""

    label: str
    name: str
    count: int
    first: dt.datetime | None
    last: dt.datetime | None


def _time_column(model: type[models.Model]) -> str | None:
    names = {f.name for f in model._meta.concrete_fields}
    return next((name for name in _SUMMARY_TIMES if name in names), None)


def subject_data_summary(*, organization: Organization, subject: Subject) -> list[CategorySummary]:
    """Per table of every purger: the subject's row count and date range, counted in the database (the "my data"
    page's access view). Tables are found by label from the registry, so consent imports no app above it."""
    summaries = []
    for purger in purgers():
        for label in purger.models:
            model = apps.get_model(label)
            rows = model._base_manager.filter(organization_id=organization.pk)
            rows = rows.filter(pk=subject.pk) if model is Subject else rows.filter(subject_id=subject.pk)
            column = _time_column(model)
            figures = rows.aggregate(count=Count("pk"), **(
                {"first": Min(column), "last": Max(column)} if column else {}))
            summaries.append(CategorySummary(label, str(model._meta.verbose_name_plural), figures["count"],
                                             figures.get("first"), figures.get("last")))
    return summaries


def subject_export_section(*, organization: Organization, subject: Subject, label: str) -> Iterator[dict[str, Any]]:
    """The rows of one model label from the purger that exports it (the page's segments and recent decisions)."""
    for purger in purgers():
        if label not in purger.models or purger.export is None:
            continue
        seen = False
        for row_label, row in purger.export(organization.pk, subject.pk):
            if row_label == label:
                seen = True
                yield row
            elif seen:  # a purger's rows come grouped by label: this one is over
                return


def export_response(*, organization: Organization, subject: Subject, filename: str) -> StreamingHttpResponse:
    """The subject's export as a streamed JSON attachment that no cache keeps."""
    response = StreamingHttpResponse(
        subject_export_stream(organization=organization, subject=subject), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    return response
