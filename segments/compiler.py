"""A validated definition turned into one set-based query: the subjects of an organization who meet it at `now`.

Every leaf becomes `Q(pk__in=<grouped subquery>)` (or its negation), so the database does the work: no Python
loop over subjects, on PostgreSQL and SQLite alike. The same compilation with `subject_id` filters every
subquery to that subject's rows (an index on subject and time), which is how one subject is brought up to date
when its features or events arrive; `subject_meets` asks it with SQL built once per definition, since building
the query through the ORM costs several times what PostgreSQL takes to answer it. What each field means is in
`segments.conditions` and docs/segments.md.

Two rules keep negation honest:
- every subquery selects non-null subject ids, so `NOT IN` never meets a NULL;
- a count or amount condition that 0 satisfies (`clicks eq 0`, `conversions lt 2`) matches the subjects with
  no rows too: it compiles to "not among those whose count fails", not "among those whose count holds".
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import (
    Aggregate,
    Case,
    Count,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, RowNumber

from consent.guards import grant_state_expression, live_consent_subjects, live_grants
from consent.models import Grant, Subject
from faceanalysis.aggregates import SMILE_THRESHOLD
from faceanalysis.models import CaptureSession, FrameFeatures
from faceanalysis.signals import AGE_BAND_EDGES, AGE_BANDS
from segments import sources
from segments.conditions import (
    EVENT_KINDS,
    EXPRESSION_SHARE_PREFIX,
    FACE_PURPOSES,
    GRANT_STATES,
    holds,
    is_face_based,
)
from segments.selectors import open_members

DAY = timedelta(days=1)


class Median(Aggregate):
    """The median of a column: PostgreSQL's percentile_cont(0.5); on SQLite the aggregate `segments.apps`
    registers on each connection, which computes it the same way (`median_of`)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="VISAGE_MEDIAN", template="%(function)s(%(expressions)s)")


def median_of(values: list[float]) -> float | None:
    """percentile_cont(0.5) as PostgreSQL computes it: the middle value, or lo + 0.5 * (hi - lo) between two."""
    if not values:
        return None
    ordered = sorted(values)
    middle = (len(ordered) - 1) / 2
    low = ordered[int(middle)]
    if middle.is_integer():
        return low
    high = ordered[int(middle) + 1]
    return low + 0.5 * (high - low)


def _compare(name: str, op: str, value: Any) -> Q:
    """`name op value` as a Q over an annotation or column."""
    lookups = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "in": "in"}
    if op in lookups:
        return Q(**{f"{name}__{lookups[op]}": value})
    if op == "ne":
        return ~Q(**{name: value})
    if op == "not_in":
        return ~Q(**{f"{name}__in": value})
    if op == "between":
        return Q(**{f"{name}__gte": value[0], f"{name}__lte": value[1]})
    raise ValueError(f"unknown operator {op!r}")


NOTHING = Q(pk__in=[])  # matches no subject


def _either(parts: Iterable[Q]) -> Q:
    """The OR of `parts` (at least one)."""
    return functools.reduce(operator.or_, parts)


def _share(hits: Q) -> Any:
    return Cast(Count("pk", filter=hits), FloatField()) / Cast(Count("pk"), FloatField())


class _Compiler:
    def __init__(self, organization_id: int, now: datetime, subject_id: int | None) -> None:
        self.organization_id = organization_id
        self.now = now
        self.subject_id = subject_id

    def _scoped(self, rows: QuerySet, *, time_field: str, window: int | None) -> QuerySet:
        rows = rows.filter(organization_id=self.organization_id, subject_id__isnull=False).order_by()
        if window is not None:
            rows = rows.filter(**{f"{time_field}__gte": self.now - timedelta(seconds=window),
                                  f"{time_field}__lte": self.now})
        if self.subject_id is not None:
            rows = rows.filter(subject_id=self.subject_id)
        return rows

    def node(self, node: Mapping) -> Q:
        if "all" in node:
            q = Q()
            for child in node["all"]:
                q &= self.node(child)
            return q
        if "any" in node:
            return _either(self.node(child) for child in node["any"])
        if "not" in node:
            return ~self.node(node["not"])
        return self.leaf(node)

    def leaf(self, leaf: Mapping) -> Q:
        name = leaf["field"]
        if name.startswith("face."):
            return self.face(leaf)
        if name in EVENT_KINDS:
            return self.behaviour(leaf)
        if name.startswith("consent."):
            return self.consent(name.removeprefix("consent."), leaf["op"], leaf["value"])
        if name == "subject.days_since_first_seen":
            return self.days_since_first_seen(leaf["op"], leaf["value"])
        if name == "subject.partner_linked":
            linked = ~Q(partner_ref_hash="")
            return linked if holds(leaf["op"], True, leaf["value"]) else ~linked
        if name == "segment":
            members = open_members(
                organization_id=self.organization_id, keys=leaf["value"], now=self.now, subject_id=self.subject_id,
            )
            return Q(pk__in=members) if leaf["op"] == "in" else ~Q(pk__in=members)
        raise ValueError(f"no compilation for field {name!r}")

    # --- face -------------------------------------------------------------------------------------------------

    def face(self, leaf: Mapping) -> Q:
        name, op, value = leaf["field"], leaf["op"], leaf["value"]
        window = leaf["window_seconds"]
        if name == "face.sessions":
            rows = self._scoped(CaptureSession.objects.all(), time_field="started_at", window=window)
            if leaf.get("campaign"):
                rows = rows.filter(campaign_id=leaf["campaign"])
            return self._counted(rows, Count("pk"), op, value)
        rows = self._scoped(FrameFeatures.objects.all(), time_field="analyzed_at", window=window)
        rows = rows.filter(face_count__gte=1, quality_ok=True)  # counting frames (aggregates.is_counting)
        if leaf.get("campaign"):
            rows = rows.filter(session__campaign_id=leaf["campaign"])
        min_frames = leaf["min_frames"]
        if name == "face.attention_share":
            rows, hits = rows.filter(looking_at_screen__isnull=False), Q(looking_at_screen=True)
        elif name == "face.smile_share":
            rows, hits = rows.filter(smile__isnull=False), Q(smile__gte=SMILE_THRESHOLD)
        elif name.startswith(EXPRESSION_SHARE_PREFIX):
            label = name.removeprefix(EXPRESSION_SHARE_PREFIX)
            rows = rows.exclude(expression="")
            hits = Q(expression=label, expression_confidence__gte=leaf["min_confidence"])
        elif name == "face.age_band":
            return self.age_band(rows.filter(age_years__isnull=False), op, value, min_frames)
        elif name == "face.gender":
            return self.gender(rows, op, value, min_frames, leaf["min_confidence"])
        else:
            raise ValueError(f"no compilation for field {name!r}")
        grouped = rows.values("subject_id").annotate(_n=Count("pk"), _share=_share(hits)).filter(_n__gte=min_frames)
        return Q(pk__in=grouped.filter(_compare("_share", op, value)).values("subject_id"))

    def age_band(self, rows: QuerySet, op: str, value: Any, min_frames: int) -> Q:
        bands = {value} if op in ("eq", "ne") else set(value)
        if op in ("ne", "not_in"):
            bands = set(AGE_BANDS) - bands
        if not bands:
            return NOTHING
        edges = (float("-inf"), *AGE_BAND_EDGES, float("inf"))
        parts = []
        for band in sorted(bands):
            i = AGE_BANDS.index(band)
            low, high = edges[i], edges[i + 1]
            part = Q()
            if low != float("-inf"):
                part &= Q(_median__gte=low)
            if high != float("inf"):
                part &= Q(_median__lt=high)
            parts.append(part)
        in_band = _either(parts)
        grouped = rows.values("subject_id").annotate(_n=Count("pk"), _median=Median("age_years"))
        return Q(pk__in=grouped.filter(in_band, _n__gte=min_frames).values("subject_id"))

    def gender(self, rows: QuerySet, op: str, value: Any, min_frames: int, min_confidence: float) -> Q:
        rows = rows.filter(gender__in=("female", "male"), gender_confidence__gte=min_confidence)
        female, male = Q(gender="female"), Q(gender="male")
        grouped = rows.values("subject_id").annotate(
            _n=Count("pk"), _female=Count("pk", filter=female), _male=Count("pk", filter=male),
            _last_female=Max("analyzed_at", filter=female), _last_male=Max("analyzed_at", filter=male),
        ).filter(_n__gte=min_frames)
        # Equal counts go to the label of the newest frame; equal times too: no estimate.
        is_female = Q(_female__gt=F("_male")) | Q(_female=F("_male"), _last_female__gt=F("_last_male"))
        is_male = Q(_male__gt=F("_female")) | Q(_female=F("_male"), _last_male__gt=F("_last_female"))
        labels = {value} if op in ("eq", "ne") else set(value)
        if op in ("ne", "not_in"):
            labels = {"female", "male"} - labels
        parts = [q for label, q in (("female", is_female), ("male", is_male)) if label in labels]
        if not parts:
            return NOTHING
        wanted = _either(parts)
        return Q(pk__in=grouped.filter(wanted).values("subject_id"))

    # --- behaviour, counts ------------------------------------------------------------------------------------

    def behaviour(self, leaf: Mapping) -> Q:
        rows = self._scoped(sources.events(self.organization_id), time_field="received_at",
                            window=leaf["window_seconds"])
        rows = rows.filter(kind=EVENT_KINDS[leaf["field"]])
        if leaf.get("campaign"):
            rows = rows.filter(campaign_id=leaf["campaign"])
        if leaf.get("name"):
            rows = rows.filter(name=leaf["name"])
        if leaf["field"] == "behaviour.conversion_value":
            total = Coalesce(Cast(Sum("value"), FloatField()), Value(0.0), output_field=FloatField())
            return self._counted(rows, total, leaf["op"], leaf["value"])
        return self._counted(rows, Count("pk"), leaf["op"], leaf["value"])

    def _counted(self, rows: QuerySet, measure: Any, op: str, value: Any) -> Q:
        grouped = rows.values("subject_id").annotate(_m=measure)
        if holds(op, 0, value):  # the subjects without rows meet it too
            return ~Q(pk__in=grouped.filter(~_compare("_m", op, value)).values("subject_id"))
        return Q(pk__in=grouped.filter(_compare("_m", op, value)).values("subject_id"))

    # --- consent, attributes ----------------------------------------------------------------------------------

    def consent(self, purpose: str, op: str, value: Any) -> Q:
        states = {value} if op in ("eq", "ne") else set(value)
        if op in ("ne", "not_in"):
            states = set(GRANT_STATES) - states
        if states == {"active"}:  # the guard's own bulk answer
            live = live_grants(organization_id=self.organization_id, purpose=purpose, at=self.now)
            return Q(pk__in=self._scoped(live, time_field="", window=None).values("subject_id"))
        grants = self._scoped(Grant.objects.filter(purpose=purpose), time_field="", window=None)
        # The state shown is that of the open grant, else of the most recent ended one (guards.grant_states).
        chosen = grants.annotate(
            _state=grant_state_expression(at=self.now),
            _rank=Window(RowNumber(), partition_by=[F("subject_id")], order_by=[
                Case(When(ended_at__isnull=True, then=Value(0)), default=Value(1)).asc(),
                F("granted_at").desc(), F("pk").desc(),
            ]),
        ).filter(_rank=1, _state__in=sorted(states - {"none"})).values("subject_id")
        q = Q(pk__in=chosen)
        if "none" in states:
            q |= ~Q(pk__in=grants.values("subject_id"))
        return q

    def days_since_first_seen(self, op: str, value: Any) -> Q:
        # days = floor((now - created_at) / 1 day); each comparison is a bound on created_at.
        def at_least(days: int) -> Q:
            return Q(created_at__lte=self.now - days * DAY)

        def at_most(days: int) -> Q:
            return Q(created_at__gt=self.now - (days + 1) * DAY)

        builders: dict[str, Callable[[Any], Q]] = {
            "gte": at_least, "gt": lambda d: at_least(d + 1), "lte": at_most, "lt": lambda d: at_most(d - 1),
            "eq": lambda d: at_least(d) & at_most(d), "between": lambda v: at_least(v[0]) & at_most(v[1]),
        }
        if op in builders:
            return builders[op](value)
        if op == "ne":
            return ~(at_least(value) & at_most(value))
        either = _either(at_least(days) & at_most(days) for days in value)
        return either if op == "in" else ~either


def members_query(
    tree: Mapping, *, organization_id: int, now: datetime, subject_id: int | None = None,
    face_based: bool | None = None,
) -> QuerySet[Subject]:
    """The subjects of the organization (not erased) who meet the validated `tree` at `now`; with `subject_id`,
    that subject or nothing. A face-based tree counts only subjects live on face analysis and personalization;
    `face_based` is the segment's own flag, which also counts the face-based segments its tree names (None: the
    tree's own leaves decide)."""
    subjects = Subject.objects.filter(organization_id=organization_id, erased_at__isnull=True)
    if subject_id is not None:
        subjects = subjects.filter(pk=subject_id)
    subjects = subjects.filter(_Compiler(organization_id, now, subject_id).node(tree))
    if face_based or (face_based is None and is_face_based(tree)):
        live = live_consent_subjects(organization_id=organization_id, purposes=FACE_PURPOSES, at=now)
        if subject_id is not None:
            live = live.filter(pk=subject_id)
        subjects = subjects.filter(pk__in=live.values("pk"))
    return subjects.order_by()


# --- one subject, SQL built once --------------------------------------------------------------------------------

# Two probes compiled alike: the parameters that differ between them are the subject and times derived from `now`.
_PROBES = ((datetime(2001, 1, 1, tzinfo=UTC), -(2**40) - 1), (datetime(2002, 2, 2, 1, 1, 1, tzinfo=UTC), -(2**40) - 2))
SUBJECT = "subject"


def _exists_sql(
    tree: Mapping, organization_id: int, alias: str, face_based: bool | None, now: datetime, subject_id: int
) -> tuple[str, list]:
    query = members_query(tree, organization_id=organization_id, now=now, subject_id=subject_id,
                          face_based=face_based).query.exists()
    sql, params = query.get_compiler(using=alias).as_sql()
    return sql, list(params)


@functools.lru_cache(maxsize=512)
def _one_subject_template(
    definition: str, organization_id: int, alias: str, face_based: bool | None = None
) -> tuple[str, tuple] | None:
    """(sql, slots) for `subject_meets`: each slot is SUBJECT, a timedelta from `now`, or ("value", v). None when
    the parameters cannot be told apart (the ORM answers each time then); ("", ()) when no subject can meet it."""
    tree = json.loads(definition)
    ops = connections[alias].ops
    try:
        (sql, first), (again, second) = (
            _exists_sql(tree, organization_id, alias, face_based, *probe) for probe in _PROBES
        )
    except EmptyResultSet:
        return "", ()
    if sql != again or len(first) != len(second):
        return None
    slots: list[Any] = []
    for a, b in zip(first, second, strict=True):
        if a == b and not isinstance(a, datetime):
            slots.append(("value", a))
        elif (a, b) == (_PROBES[0][1], _PROBES[1][1]):
            slots.append(SUBJECT)
        else:
            at = a if isinstance(a, datetime) else datetime.fromisoformat(str(a)).replace(tzinfo=UTC)
            offset = at - _PROBES[0][0]
            # Only a time `now + offset` in both probes, in the form this database takes, is a slot.
            expected = [ops.adapt_datetimefield_value(when + offset) for when, _ in _PROBES]
            if expected != [a, b]:
                return None
            slots.append(offset)
    return sql, tuple(slots)


def subject_meets(
    tree: Mapping, *, organization_id: int, now: datetime, subject_id: int, using: str = "default",
    face_based: bool | None = None,
) -> bool:
    """`members_query(tree, ..., subject_id=subject_id).exists()`, with the SQL built once per definition and
    organization: the one-subject update of every segment, on each feature or event of the subject."""
    template = _one_subject_template(json.dumps(tree, sort_keys=True), organization_id, using, face_based)
    if template is None:
        return members_query(tree, organization_id=organization_id, now=now, subject_id=subject_id,
                             face_based=face_based).exists()
    sql, slots = template
    if not sql:
        return False
    ops = connections[using].ops
    params = [
        subject_id if slot == SUBJECT else slot[1] if isinstance(slot, tuple)
        else ops.adapt_datetimefield_value(now + slot)
        for slot in slots
    ]
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None
