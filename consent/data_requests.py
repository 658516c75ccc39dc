"""Data subject requests (GDPR Art. 15, 17, 20): access, export and erasure, from the "my data" page or from the
partner API on the subject's behalf. Each is recorded with its state, its due date (one calendar month after
receipt, Art. 12(3)) and who asked.

- Access and export are answered at once: the page (or the API's answer) is the access, the streamed document
  (consent.data_export) is the export; its download reads live data and works while the subject is not erased.
- Erasure runs through a purge request (consent.services.subject_erase): the request is in progress until every
  purger's part is done, when consent.purging marks it done and the feed says `erasure.done`. A second erasure of
  an erased subject answers with the first.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from consent.models import DataRequest, OutboxEvent, PurgeRequest, Subject
from consent.outbox import event_emit
from consent.services import ConsentError, subject_erase

REQUESTED_BY_SUBJECT = "subject"


def one_month_after(moment: datetime) -> datetime:
    """The same day and time one calendar month later; the month's last day where that month is shorter
    (31 January -> 28 or 29 February)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class DataRequestOutcome:
    """The request, and whether this call recorded it (False: a second erasure answered with the first)."""

    request: DataRequest
    created: bool


def _record(*, organization: Organization, subject: Subject, kind: str, channel: str, requested_by: str,
            now: datetime, **fields: Any) -> DataRequest:
    return DataRequest.objects.create(
        organization=organization, kind=kind, subject_id=subject.pk, subject_ref=str(subject.public_id),
        channel=channel, requested_by=requested_by[:80], received_at=now, due_at=one_month_after(now), **fields,
    )


def _existing_erasure(organization: Organization, subject: Subject) -> DataRequest | None:
    return (
        DataRequest.objects.for_organization(organization)
        .filter(subject_id=subject.pk, kind=DataRequest.Kind.ERASURE).order_by("received_at", "pk").first()
    )


def _erasure_of_erased(organization: Organization, subject: Subject, *, channel: str, requested_by: str,
                       now: datetime) -> DataRequestOutcome:
    """The subject is erased already: the first erasure request answers; one erased without a request (by an
    administrator) gets one recorded now, linked to that purge, so the answer is the same shape."""
    existing = _existing_erasure(organization, subject)
    if existing is not None:
        return DataRequestOutcome(existing, created=False)
    purge = (
        PurgeRequest.objects.for_organization(organization)
        .filter(subject_id=subject.pk, reason=PurgeRequest.Reason.SUBJECT_ERASED).order_by("created_at").first()
    )
    done = purge is None or purge.completed_at is not None
    request = _record(
        organization=organization, subject=subject, kind=DataRequest.Kind.ERASURE, channel=channel,
        requested_by=requested_by, now=now, purge_request=purge, started_at=now,
        state=DataRequest.State.DONE if done else DataRequest.State.IN_PROGRESS,
        completed_at=(purge.completed_at if purge else now) if done else None,
    )
    return DataRequestOutcome(request, created=False)


@transaction.atomic
def data_request_create(
    *,
    organization: Organization,
    subject: Subject,
    kind: str,
    channel: str,
    requested_by: str,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> DataRequestOutcome:
    """Record a data subject request and start answering it. Access and export are done at once (an export says
    `export.ready` on the feed); an erasure withdraws every grant, records the purge of everything and says
    `erasure.requested`, all in this transaction, and is done when the purge is. Raises ConsentError for an
    unknown kind, and for access or export of an erased subject (nothing is left to show)."""
    if kind not in DataRequest.Kind.values:
        raise ConsentError("Unknown request kind: access, export or erasure.", code="unknown_kind")
    if subject.organization_id != organization.pk:
        raise ConsentError("No such subject.", code="not_found")
    now = now or timezone.now()
    locked = Subject.objects.select_for_update().get(pk=subject.pk, organization=organization)
    ref = str(locked.public_id)
    if kind == DataRequest.Kind.ERASURE:
        if locked.erased_at is not None:
            return _erasure_of_erased(organization, locked, channel=channel, requested_by=requested_by, now=now)
        purge = subject_erase(organization=organization, subject=locked, channel=channel, evidence=evidence)
        request = _record(
            organization=organization, subject=locked, kind=kind, channel=channel, requested_by=requested_by,
            now=now, purge_request=purge, started_at=now,
            state=DataRequest.State.IN_PROGRESS if purge is not None else DataRequest.State.DONE,
            completed_at=None if purge is not None else now,
        )
        event_emit(organization=organization, type=OutboxEvent.Type.ERASURE_REQUESTED, subject_ref=ref,
                   payload={"data_request": str(request.public_id),
                            "purge_request": str(purge.public_id) if purge else None})
        return DataRequestOutcome(request, created=True)
    if locked.erased_at is not None:
        raise ConsentError("The subject is erased: nothing is kept to show or export.", code="subject_erased")
    request = _record(
        organization=organization, subject=locked, kind=kind, channel=channel, requested_by=requested_by, now=now,
        state=DataRequest.State.DONE, started_at=now, completed_at=now,
    )
    if kind == DataRequest.Kind.EXPORT:
        event_emit(organization=organization, type=OutboxEvent.Type.EXPORT_READY, subject_ref=ref,
                   payload={"data_request": str(request.public_id)})
    return DataRequestOutcome(request, created=True)
