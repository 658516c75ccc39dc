"""The one consent guard: may this subject's biometric data be processed for this purpose, now?

Everything that touches biometric data calls `require_consent` (where work is accepted, and again in the
worker right before inference) and keeps the returned Grant's id on every row it derives.
It reads the database every time and fails closed.

This module holds the only definitions of "is this consent live"; nothing else in the project decides it:

- `require_consent` / `require_consents` (and `has_consent` / `has_consents`): one subject, with the reason.
- `live_grants` / `live_consent_subjects`: the same answer for every subject of an organization at once, as
  querysets that other queries join (`Exists`, `pk__in`), for segments, reports and decisions.
- `grant_state` / `grant_state_expression`: what one grant shows (admin, API, "my data" page), checked in the
  guard's order, so that "active" is shown exactly where the guard says yes.

A grant is live when its subject belongs to the organization and is not erased, it is open (not withdrawn,
replaced or expired by the bookkeeping), its time has not run out, and its notice is published or superseded
(not retired); with derived attributes, its notice must name each of them as well. `at` moves the clock, not
the rows: every form reads today's grants as if it were `at`. tests/consent/test_live_consent_agreement.py
holds the forms to one answer over random histories.
"""

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from django.db import connection
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Concat
from django.utils import timezone

from config.rawsql import fetch_one, select_columns
from consent import derived
from consent.models import Grant, NoticeVersion, Purpose, Subject


class DenialReason(StrEnum):
    """Why the guard said no. Stable strings: APIs and logs carry them."""

    UNKNOWN_PURPOSE = "unknown_purpose"
    UNKNOWN_SUBJECT = "unknown_subject"  # missing, or of another organization: the same answer
    SUBJECT_ERASED = "subject_erased"
    NO_GRANT = "no_grant"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    NOTICE_RETIRED = "notice_retired"
    NOTICE_DOES_NOT_COVER = "notice_does_not_cover"  # the grant's notice does not name what would be derived


# Notices whose grants cover processing: a superseded text stays valid for the grants given under it.
LIVE_NOTICE_STATUSES = (NoticeVersion.Status.PUBLISHED, NoticeVersion.Status.SUPERSEDED)


class ConsentDenied(Exception):
    """Processing is not covered by a live consent. Carries the reason; never personal data beyond ids."""

    def __init__(self, reason: DenialReason, *, purpose: str, subject_id: int | None) -> None:
        self.reason = reason
        self.purpose = purpose
        self.subject_id = subject_id
        super().__init__(f"No consent for purpose {purpose!r} of subject {subject_id}: {reason.value}.")


def require_consent(
    *, organization_id: int | None, subject_id: int | None, purpose: str, for_update: bool = False,
    share_lock: bool = False, at: datetime | None = None, derived_attributes: Iterable[str] | None = None,
) -> Grant:
    """Return the live Grant that allows processing `subject_id` for `purpose`, or raise ConsentDenied.

    With `derived_attributes` (consent.derived keys), the grant's notice must also name each of them: consent
    covers deriving what the person was told about, no more (NOTICE_DOES_NOT_COVER otherwise).

    `for_update=True` (inside a transaction) locks the subject row until commit, so a withdrawal that races
    with the caller waits for it and then purges what it wrote. `share_lock=True` does the same with a shared
    lock on PostgreSQL, so callers that only process (analysis workers) run side by side, and the common yes
    stays one query. Either way the answer is read from what is committed once the lock is held: no
    processing starts after a withdrawal commits.
    """
    now = at or timezone.now()
    if purpose not in Purpose.values:
        raise ConsentDenied(DenialReason.UNKNOWN_PURPOSE, purpose=str(purpose), subject_id=subject_id)
    if not organization_id or not subject_id:
        raise ConsentDenied(DenialReason.UNKNOWN_SUBJECT, purpose=purpose, subject_id=subject_id)
    if not for_update:
        # The common answer, yes, in one query; any doubt goes through the checks below, which name the reason.
        live = _live_grant(
            organization_id=organization_id, subject_id=subject_id, purpose=purpose, now=now, share_lock=share_lock
        )
        if live is not None:
            return _covering(live, derived_attributes)
    # The reads below are statements of their own, after the lock is held: in READ COMMITTED each sees
    # everything committed before it, so a wait for a withdrawal (or anything else) is answered from its outcome.
    if share_lock and not for_update and connection.vendor == "postgresql":
        # FOR SHARE, as the common yes takes it: the workers of one subject stay side by side here too.
        subject = fetch_one(Subject, _subject_for_share_sql(), [organization_id, subject_id])
    else:
        subjects = Subject.objects.filter(organization_id=organization_id, pk=subject_id)
        subject = (subjects.select_for_update() if for_update else subjects).first()
    if subject is None:
        raise ConsentDenied(DenialReason.UNKNOWN_SUBJECT, purpose=purpose, subject_id=subject_id)
    if subject.erased_at is not None:
        raise ConsentDenied(DenialReason.SUBJECT_ERASED, purpose=purpose, subject_id=subject_id)
    if at is None:  # the clock too is read after any wait: a grant may have run out meanwhile
        now = timezone.now()

    grant = (
        Grant.objects.filter(organization_id=organization_id, subject=subject, purpose=purpose, ended_at__isnull=True)
        .select_related("notice")
        .first()
    )
    if grant is None:
        last = (
            Grant.objects.filter(organization_id=organization_id, subject=subject, purpose=purpose)
            .order_by("-ended_at")
            .only("end_reason")
            .first()
        )
        reason = {
            Grant.EndReason.WITHDRAWN: DenialReason.WITHDRAWN,
            Grant.EndReason.EXPIRED: DenialReason.EXPIRED,
        }.get(last.end_reason if last else "", DenialReason.NO_GRANT)
        raise ConsentDenied(reason, purpose=purpose, subject_id=subject_id)
    if grant.expires_at <= now:
        raise ConsentDenied(DenialReason.EXPIRED, purpose=purpose, subject_id=subject_id)
    if grant.notice.status not in LIVE_NOTICE_STATUSES:
        raise ConsentDenied(DenialReason.NOTICE_RETIRED, purpose=purpose, subject_id=subject_id)
    grant.notice_derived_attributes = grant.notice.derived_attributes
    return _covering(grant, derived_attributes)


def _covering(grant: Grant, derived_attributes: Iterable[str] | None) -> Grant:
    """The grant, if its notice names every attribute in `derived_attributes`; NOTICE_DOES_NOT_COVER if not.
    A published notice never changes, so the attributes read with the grant are the notice's for good."""
    if derived_attributes is None:
        return grant
    named = getattr(grant, "notice_derived_attributes", None)
    if named is None:
        named = NoticeVersion.objects.filter(pk=grant.notice_id).values_list("derived_attributes", flat=True).first()
    if named is None or set(derived_attributes) - derived.parse(named):
        raise ConsentDenied(DenialReason.NOTICE_DOES_NOT_COVER, purpose=grant.purpose, subject_id=grant.subject_id)
    return grant


# The common yes under `share_lock` never waits. A row lock that had to wait would leave the answer resting on the
# statement's snapshot, taken before the wait: PostgreSQL re-reads only the locked rows that changed meanwhile, so
# a grant ended (or a notice retired) by the transaction waited for would still pass. Hence SKIP LOCKED: a subject
# or grant that someone holds (a withdrawal, an expiry, a replacement, all of which lock the subject first) makes
# this return nothing, and the checks in `require_consent` wait for the lock and read afresh. The grant is locked
# as well, so that one ended by a transaction that committed between the snapshot and the lock is re-read (and
# refused) rather than returned; the analysis's own features take a key-share lock on that row anyway. Lock
# order s, then g (the order of the OF list), as the withdrawal takes them; a statement that never waits
# cannot deadlock.
LIVE_GRANT_LOCK = " FOR SHARE OF s, g SKIP LOCKED"


@functools.cache
def _live_grant_sql(share_lock: bool = False) -> str:
    grant, subject, notice = Grant._meta.db_table, Subject._meta.db_table, NoticeVersion._meta.db_table
    columns = select_columns(Grant, alias="g")
    return (
        f"SELECT {columns}, n.derived_attributes FROM {grant} g"  # noqa: S608 - names from the models, values as parameters
        f" INNER JOIN {subject} s ON s.id = g.subject_id INNER JOIN {notice} n ON n.id = g.notice_id"
        " WHERE g.organization_id = %s AND g.subject_id = %s AND s.organization_id = %s AND s.erased_at IS NULL"
        " AND g.purpose = %s AND g.ended_at IS NULL AND g.expires_at > %s AND n.status IN (%s, %s)"
        " ORDER BY g.id LIMIT 1"
        + (LIVE_GRANT_LOCK if share_lock else "")
    )


@functools.cache
def _subject_for_share_sql() -> str:
    return (
        f"SELECT {select_columns(Subject)} FROM {Subject._meta.db_table}"  # noqa: S608 - names from the model
        " WHERE organization_id = %s AND id = %s FOR SHARE"
    )


def _live_grant(
    *, organization_id: int, subject_id: int, purpose: str, now: datetime, share_lock: bool = False
) -> Grant | None:
    """The grant that passes every check of `require_consent` at `now`, or None.

    Every intake request and every analysis task asks this, so its SQL is written once rather than built by the
    ORM each time (building cost more than running it). The same conditions as the checks below, in one query.
    """
    params = [
        organization_id, subject_id, organization_id, purpose, now,
        NoticeVersion.Status.PUBLISHED.value, NoticeVersion.Status.SUPERSEDED.value,
    ]
    sql = _live_grant_sql(share_lock=share_lock and connection.vendor == "postgresql")
    return fetch_one(Grant, sql, params, annotations=("notice_derived_attributes",))


def require_consents(
    *, organization_id: int | None, subject_id: int | None, purposes: Iterable[str],
    derived_attributes: Iterable[str] | None = None, share_lock: bool = False,
    checked: Mapping[str, Grant] | None = None, at: datetime | None = None,
) -> dict[str, Grant]:
    """The live Grant of every purpose in `purposes`, all of them together, through `require_consent` (the first
    missing one, in sorted order, raises ConsentDenied naming it). With `derived_attributes`, the face-analysis
    grant's notice must name each of them.

    `checked` holds grants the caller got from `require_consent` under the same lock (the task guard's): they
    need no second query.
    """
    wanted = _needed_purposes(purposes, derived_attributes)
    if not wanted:  # consent to nothing allows nothing: fail closed, as the bulk form does
        raise ConsentDenied(DenialReason.UNKNOWN_PURPOSE, purpose="", subject_id=subject_id)
    grants: dict[str, Grant] = {}
    for purpose in wanted:
        attributes = derived_attributes if purpose == Purpose.FACE_ANALYSIS else None
        known = (checked or {}).get(purpose)
        if known is not None and known.subject_id == subject_id and known.organization_id == organization_id:
            grants[purpose] = _covering(known, attributes)
            continue
        grants[purpose] = require_consent(
            organization_id=organization_id, subject_id=subject_id, purpose=purpose, share_lock=share_lock,
            derived_attributes=attributes, at=at,
        )
    return grants


def _needed_purposes(purposes: Iterable[str], derived_attributes: Iterable[str] | None) -> list[str]:
    """The purposes to check, sorted: those asked, and face analysis whenever attributes are to be derived."""
    return sorted({*purposes, *([Purpose.FACE_ANALYSIS] if derived_attributes is not None else [])})


def has_consents(
    *, organization_id: int | None, subject_id: int | None, purposes: Iterable[str],
    derived_attributes: Iterable[str] | None = None, at: datetime | None = None,
) -> bool:
    """True when `require_consents` would return grants (now, or at `at`)."""
    try:
        require_consents(
            organization_id=organization_id, subject_id=subject_id, purposes=purposes,
            derived_attributes=derived_attributes, at=at,
        )
    except ConsentDenied:
        return False
    return True


def has_consent(
    *, organization_id: int | None, subject_id: int | None, purpose: str, at: datetime | None = None
) -> bool:
    """True when `require_consent` would return a grant (now, or at `at`)."""
    try:
        require_consent(organization_id=organization_id, subject_id=subject_id, purpose=purpose, at=at)
    except ConsentDenied:
        return False
    return True


# --- The bulk form: the same conditions, for every subject of an organization at once -----------------------------


def live_grants(
    *, organization_id: int | None, purpose: str, at: datetime | None = None,
    derived_attributes: Iterable[str] | None = None,
) -> QuerySet[Grant]:
    """The grants `require_consent` would return at `at` for `purpose`, of every subject of the organization:
    subject of the organization and not erased, grant open, not run out, notice published or superseded, and
    with `derived_attributes`, a notice that names each of them. Fails closed: no organization, no rows."""
    if not organization_id or purpose not in Purpose.values:
        return Grant.objects.none()
    grants = Grant.objects.filter(
        _live_q(at or timezone.now()), organization_id=organization_id, purpose=purpose,
        subject__organization_id=organization_id,
    )
    if derived_attributes is None:
        return grants
    wanted = set(derived_attributes)
    if wanted - derived.ALL_KEYS:
        return Grant.objects.none()  # `derived.parse` drops what the catalogue does not know: nothing names it
    # The stored choice is comma-joined (consent.derived.canonical); a key is named when ",key," is in ",stored,".
    # The core attributes are named by every notice (`derived.parse` adds them).
    named = Concat(Value(","), F("notice__derived_attributes"), Value(","), output_field=CharField())
    grants = grants.alias(_named_attributes=named)
    for key in sorted(wanted - derived.CORE_KEYS):
        grants = grants.filter(_named_attributes__contains=f",{key},")
    return grants


def live_consent_subjects(
    *, organization_id: int | None, purposes: Iterable[str], at: datetime | None = None,
    derived_attributes: Iterable[str] | None = None,
) -> QuerySet[Subject]:
    """The subjects of the organization for whom `has_consents` is true at `at`: a live grant for every purpose in
    `purposes` (and, with `derived_attributes`, for face analysis under a notice naming each of them). A queryset
    to join (`Exists(... .filter(pk=OuterRef("subject_id")))`, `subject__in=`), never a list."""
    wanted = _needed_purposes(purposes, derived_attributes)
    if not wanted:
        raise ValueError("Name at least one purpose: consent to nothing says nothing about a subject.")
    if not organization_id or set(wanted) - set(Purpose.values):
        return Subject.objects.none()
    attributes = None if derived_attributes is None else tuple(derived_attributes)
    subjects = Subject.objects.filter(organization_id=organization_id, erased_at__isnull=True)
    for purpose in wanted:
        grants = live_grants(
            organization_id=organization_id, purpose=purpose, at=at,
            derived_attributes=attributes if purpose == Purpose.FACE_ANALYSIS else None,
        )
        subjects = subjects.filter(Exists(grants.filter(subject_id=OuterRef("pk"))))
    return subjects


def _live_q(now: datetime) -> Q:
    """The conditions of `_live_grant_sql` on one grant row, for the ORM (the organization is the caller's)."""
    return Q(
        subject__erased_at__isnull=True, ended_at__isnull=True, expires_at__gt=now,
        notice__status__in=LIVE_NOTICE_STATUSES,
    )


# --- What one grant shows ---------------------------------------------------------------------------------------


class GrantState(StrEnum):
    """Where one grant stands, as the admin, the API and the "my data" page show it. Only ACTIVE is a grant the
    guard would return; the others follow the guard's order of checks."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    REPLACED = "replaced"
    EXPIRED = "expired"
    NOTICE_RETIRED = "notice_retired"
    SUBJECT_ERASED = "subject_erased"
    UNKNOWN_SUBJECT = "unknown_subject"  # the subject is of another organization than the grant: never live
    NONE = "none"  # no grant at all (per purpose, in consent.selectors.consent_state)


def grant_state(grant: Grant, *, at: datetime | None = None) -> GrantState:
    """What `grant` shows at `at` (now by default), checked in `require_consent`'s order: the subject, then the
    grant's end, its time, its notice. Reads `grant.subject` and `grant.notice` (select them with the grant)."""
    subject = grant.subject
    return grant_state_of(
        subject_in_organization=subject.organization_id == grant.organization_id, erased=subject.erased_at is not None,
        end_reason=grant.end_reason if grant.ended_at is not None else None,
        expired=grant.expires_at <= (at or timezone.now()), notice_status=grant.notice.status,
    )


def grant_state_of(
    *, subject_in_organization: bool, erased: bool, end_reason: str | None, expired: bool, notice_status: str
) -> GrantState:
    """`grant_state` of a grant known by these values only (a caller that read them in one narrow query)."""
    if not subject_in_organization:
        return GrantState.UNKNOWN_SUBJECT
    if erased:
        return GrantState.SUBJECT_ERASED
    if end_reason is not None:
        return GrantState(end_reason)
    if expired:
        return GrantState.EXPIRED
    if notice_status not in LIVE_NOTICE_STATUSES:
        return GrantState.NOTICE_RETIRED
    return GrantState.ACTIVE


@functools.cache
def _grant_states_sql() -> str:
    grant, subject, notice = Grant._meta.db_table, Subject._meta.db_table, NoticeVersion._meta.db_table
    return (
        "SELECT g.purpose, s.organization_id = g.organization_id, s.erased_at IS NOT NULL, g.ended_at IS NULL,"  # noqa: S608 - names from the models
        f" g.end_reason, g.expires_at <= %s, n.status FROM {grant} g"
        f" INNER JOIN {subject} s ON s.id = g.subject_id INNER JOIN {notice} n ON n.id = g.notice_id"
        " WHERE g.organization_id = %s AND g.subject_id = %s ORDER BY g.granted_at, g.id"
    )


def grant_states(*, organization_id: int, subject_id: int, at: datetime | None = None) -> dict[str, GrantState]:
    """Per purpose the state of the subject's open grant, else of its most recent ended one, as `grant_state`
    gives it; purposes without a grant are missing. One narrow query (a decision asks it on every page view)."""
    now = at or timezone.now()
    chosen: dict[str, tuple[bool, GrantState]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_grant_states_sql(), [now, organization_id, subject_id])
        rows = cursor.fetchall()
    for purpose, in_organization, erased, is_open, end_reason, expired, notice_status in rows:
        current = chosen.get(purpose)
        if current is None or not current[0] or is_open:
            state = grant_state_of(
                subject_in_organization=bool(in_organization), erased=bool(erased),
                end_reason=None if is_open else end_reason, expired=bool(expired), notice_status=notice_status,
            )
            chosen[purpose] = (bool(is_open), state)
    return {purpose: state for purpose, (_, state) in chosen.items()}


def grant_state_expression(*, at: datetime | None = None) -> Case:
    """`grant_state` as an expression over Grant rows, to filter or annotate a queryset of grants with."""
    now = at or timezone.now()
    return Case(
        When(~Q(subject__organization_id=F("organization_id")), then=Value(GrantState.UNKNOWN_SUBJECT.value)),
        When(subject__erased_at__isnull=False, then=Value(GrantState.SUBJECT_ERASED.value)),
        When(ended_at__isnull=False, then=F("end_reason")),
        When(expires_at__lte=now, then=Value(GrantState.EXPIRED.value)),
        When(~Q(notice__status__in=LIVE_NOTICE_STATUSES), then=Value(GrantState.NOTICE_RETIRED.value)),
        default=Value(GrantState.ACTIVE.value),
        output_field=CharField(),
    )
