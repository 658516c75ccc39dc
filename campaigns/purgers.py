"""Campaigns' purger (consent.purging): what a withdrawal or an erasure owes of the decision log, its events and
the experiments' exposures.

Decisions and events hold no biometric value (a rule id, reason codes, coarse request attributes) and are needed,
without anyone in them, for the campaign's statistics; so they are not deleted: their reference to the subject is
cut (subject = NULL), and the rows stay as anonymous counts of what was shown and done.

- Erasure: every decision, event and exposure of the subject is cut loose. An exposure names its subject only so
  that reaction metrics can read that person's face features while exposed; cut, the visitor stays counted in
  their arm, anonymously.
- Withdrawal (or expiry) of personalization: the same. The log holds no face value, but a decision that names
  the subject next to the face rule that fired ("smilers"), or was not matched, says what was inferred from that
  person's face for personalization; once that consent ends, the inference must not stay tied to them. Nothing
  else of the log needs the subject (stickiness and "returning" go by the page's anonymous visitor id), so
  cutting costs no feature; decisions made later under new consent link again.
- Withdrawal of face analysis alone: nothing here. Face analysis's own purger deletes the features (so reaction
  metrics lose that person's frames at once); a face rule is evaluated only under live personalization consent,
  which is what this log's inferences were made for, and whose end cuts them loose.
- Retention: each has its own period (consent.retention). Decisions older than theirs are deleted, and their
  events with them (Event.decision cascades: no event outlives its decision, whatever the events' period says);
  events older than theirs are deleted. Exposures older than theirs lose their visitor: `visitor_id` becomes
  "~" and the row's own id (never a page's visitor id, whose alphabet has no "~", and unique per phase as the
  constraint wants) and `subject` becomes NULL. The row stays in its arm, with its allocation, device, language
  and day, so the experiment's counts and the events that still point at it are reported as before
  (campaigns.results counts exposure rows); only the per-visitor identity is gone. A visitor who comes back
  after that enters the phase again as new.

Idempotent: a second run finds no row pointing at the subject.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import CharField, QuerySet, Value
from django.db.models.functions import Cast, Concat

from campaigns.models import Decision, Event, Exposure
from consent.data_export import export_rows
from consent.models import Purpose
from consent.purging import ExportRow, PurgeOrder, Purger, RetentionTarget

# An exposure cut loose by retention: "~" and its own id as its visitor id.
CUT_VISITOR_PREFIX = "~"


def decision_log_unlink(order: PurgeOrder) -> dict[str, int]:
    """Cut the subject out of its decisions and events (see the module's docstring for when)."""
    if order.subject_id is None:
        return {}
    scope = {"organization_id": order.organization_id, "subject_id": order.subject_id}
    events = Event.objects.filter(**scope).update(subject=None)
    decisions = Decision.objects.filter(**scope).update(subject=None)
    exposures = Exposure.objects.filter(**scope).update(subject=None)
    return {"decisions_unlinked": decisions, "events_unlinked": events, "exposures_unlinked": exposures}


def _decisions_expired(organization_id: int, before: datetime) -> QuerySet:
    return Decision.objects.filter(organization_id=organization_id, created_at__lt=before)


def _events_expired(organization_id: int, before: datetime) -> QuerySet:
    return Event.objects.filter(organization_id=organization_id, received_at__lt=before)


def _exposures_expired(organization_id: int, before: datetime) -> QuerySet:
    return Exposure.objects.filter(organization_id=organization_id, exposed_at__lt=before).exclude(
        visitor_id__startswith=CUT_VISITOR_PREFIX
    )


DECISION_LOG_RETENTION = (
    RetentionTarget("decisions", "campaigns.Decision", _decisions_expired, "created_at"),
    RetentionTarget("events", "campaigns.Event", _events_expired, "received_at"),
    RetentionTarget(
        "exposures", "campaigns.Exposure", _exposures_expired, "exposed_at",
        cut={"visitor_id": Concat(Value(CUT_VISITOR_PREFIX), Cast("id", CharField()), output_field=CharField()),
             "subject": None},
    ),
)
def decision_log_export(organization_id: int, subject_id: int) -> Iterator[ExportRow]:
    """The subject's decisions (with the campaign and variant keys), events and experiment exposures."""
    scope = {"organization_id": organization_id, "subject_id": subject_id}
    yield from export_rows("campaigns.Decision", Decision.objects.filter(**scope),
                           extra=("campaign__public_id", "campaign__name", "variant__key"))
    yield from export_rows("campaigns.Event", Event.objects.filter(**scope))
    yield from export_rows("campaigns.Exposure", Exposure.objects.filter(**scope))


DECISION_LOG_PURGER = Purger(
    name="campaigns.decision_log",
    models=("campaigns.Decision", "campaigns.Event", "campaigns.Exposure"),
    purge=decision_log_unlink,
    purposes=frozenset({Purpose.PERSONALIZATION.value}),
    retention=DECISION_LOG_RETENTION,
    export=decision_log_export,
)

