"""Reads of the consent app, each scoped to one organization (no organization, no rows)."""

import functools
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from accounts.tokens import token_hash
from config.rawsql import fetch_one, select_columns
from consent import derived, retention
from consent.guards import GrantState, grant_state, grant_states
from consent.models import (
    ACCESS_TOKEN_MAX_LENGTH,
    DataRequest,
    Grant,
    LedgerEntry,
    NoticeVersion,
    OutboxEvent,
    PurgePart,
    Purpose,
    ReplacedAccessToken,
    RetentionPolicy,
    Subject,
    purposes_key,
)


def notice_list_published(*, organization: Organization | None) -> QuerySet[NoticeVersion]:
    """Versions offered for new grants."""
    return NoticeVersion.objects.for_organization(organization).filter(status=NoticeVersion.Status.PUBLISHED)


def _for_choice(
    notices: QuerySet[NoticeVersion], purposes: Iterable[str], derived_attributes: Iterable[str]
) -> QuerySet[NoticeVersion]:
    """Notices for exactly this purpose set and exactly this attribute choice: each choice has notices of its
    own, so a notice for another choice never stands in."""
    return notices.filter(purposes=purposes_key(purposes), derived_attributes=derived.canonical(derived_attributes))


def notice_get_published(
    *, organization: Organization | None, language: str, purposes: Iterable[str], derived_attributes: Iterable[str]
) -> NoticeVersion | None:
    """The version offered for exactly this purpose set and attribute choice in this language (one at most)."""
    notices = _for_choice(notice_list_published(organization=organization), purposes, derived_attributes)
    return notices.filter(language=language).first()


def notice_languages_published(
    *, organization: Organization | None, purposes: Iterable[str], derived_attributes: Iterable[str]
) -> list[str]:
    """Languages in which a notice for this purpose set and attribute choice is offered."""
    notices = _for_choice(notice_list_published(organization=organization), purposes, derived_attributes)
    return sorted(set(notices.values_list("language", flat=True)))


def notice_get_by_hash(*, organization: Organization | None, text_hash: str) -> NoticeVersion | None:
    """Any non-draft version of the organization with this exact text hash."""
    if not text_hash:
        return None
    return (
        NoticeVersion.objects.for_organization(organization)
        .exclude(status=NoticeVersion.Status.DRAFT)
        .filter(text_hash=text_hash)
        .first()
    )


def retention_policy_get(*, organization: Organization | None) -> RetentionPolicy | None:
    """The organization's retention policy, if set."""
    return RetentionPolicy.objects.for_organization(organization).first()


def retention_policy_in_force(*, organization: Organization) -> RetentionPolicy:
    """The policy the purge applies: the saved one, else an unsaved one with every category's default (what
    `feature_retention_days` and the retention run fall back to). `pk is None` tells the defaults apart."""
    return retention_policy_get(organization=organization) or RetentionPolicy(organization=organization)


def frame_bytes_ttl_seconds(policy_seconds: int | None) -> int:
    """How long a frame's bytes may wait in the frame store: the policy's frame_bytes_seconds (the default without a
    policy), never above the operator's ceiling VISAGE_FRAME_TTL_SECONDS nor Visage's hard maximum."""
    frame_bytes = retention.CATEGORY_BY_KEY["frame_bytes"]
    seconds = frame_bytes.default if policy_seconds is None else int(policy_seconds)
    return max(1, min(seconds, settings.VISAGE_FRAME_TTL_SECONDS, retention.FRAME_BYTES_MAX_SECONDS))


def retention_snapshot_in_force(policy: RetentionPolicy) -> dict[str, int | str]:
    """What `policy` applies, as its snapshot: frame bytes at the TTL intake stores them with (the operator's
    ceiling may be lower than the policy)."""
    return {**policy.snapshot(), "frame_bytes_seconds": frame_bytes_ttl_seconds(policy.frame_bytes_seconds)}


def frame_bytes_ttl_for(*, organization_id: int) -> int:
    """`frame_bytes_ttl_seconds` of one organization's policy, in one query."""
    seconds = (
        RetentionPolicy.objects.filter(organization_id=organization_id)
        .values_list("frame_bytes_seconds", flat=True).first()
    )
    return frame_bytes_ttl_seconds(seconds)


def frame_bytes_ttls(*, organization_ids: Iterable[int]) -> dict[int, int]:
    """`frame_bytes_ttl_seconds` of several organizations, in one query."""
    ids = set(organization_ids)
    saved = dict(
        RetentionPolicy.objects.filter(organization_id__in=ids).values_list("organization_id", "frame_bytes_seconds")
    )
    return {org_id: frame_bytes_ttl_seconds(saved.get(org_id)) for org_id in ids}


def feature_retention_days(*, organization: Organization | None) -> int:
    """Days the organization keeps derived face features: its policy, else the policy's default."""
    policy = retention_policy_get(organization=organization) or RetentionPolicy()
    return policy.feature_retention_days


def subject_list(*, organization: Organization | None) -> QuerySet[Subject]:
    """The organization's subjects, newest first."""
    return Subject.objects.for_organization(organization)


@functools.cache
def _subject_by_public_id_sql() -> str:
    return (
        f"SELECT {select_columns(Subject)} FROM {Subject._meta.db_table}"  # noqa: S608 - names from the model
        " WHERE organization_id = %s AND public_id = %s"
    )


def subject_get(*, organization: Organization | None, public_id: str | uuid.UUID) -> Subject | None:
    """One subject by its public id (with its organization); None when missing or another organization's. SQL
    written once: a partner's decision for a subject starts here."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        return None
    if organization is None:
        return None
    key = Subject._meta.get_field("public_id").get_db_prep_value(public_id, connection)
    subject = fetch_one(Subject, _subject_by_public_id_sql(), [organization.pk, key])
    if subject is not None:
        subject.organization = organization
    return subject


def subject_get_by_access_token(*, token: str) -> Subject | None:
    """The subject whose current "my data" token this is; None for forged, rotated or malformed tokens, and for an
    erased subject's.
    Looks up by hash, then compares in constant time."""
    if not token or len(token) > ACCESS_TOKEN_MAX_LENGTH:
        return None
    digest = token_hash(token)
    subject = Subject.objects.select_related("organization").filter(access_token_hash=digest).first()
    if subject is None or not hmac.compare_digest(subject.access_token_hash, digest):
        return None
    if subject.erased_at is not None:  # dead from the erasure's commit on, before its purge blanks the hash
        return None
    return subject


def access_token_was_replaced(*, token: str) -> bool:
    """Whether this is a "my data" token that was replaced by a newer one (and is therefore no longer valid)."""
    if not token or len(token) > ACCESS_TOKEN_MAX_LENGTH:
        return False
    return ReplacedAccessToken.objects.filter(token_hash=token_hash(token)).exists()


def grant_list(*, organization: Organization | None, subject: Subject | None = None) -> QuerySet[Grant]:
    """Grants of the organization (of one subject when given), newest first."""
    # With its subject and notice: what `grant_state` reads, for every grant a list shows.
    grants = Grant.objects.for_organization(organization).select_related("notice", "subject")
    if subject is not None:
        grants = grants.filter(subject=subject)
    return grants


@dataclass(frozen=True)
class PurposeState:
    """Where one purpose stands for one subject."""

    purpose: str
    state: GrantState  # the grant's `grant_state`, or NONE without any grant
    grant: Grant | None


def consent_state(
    *, organization: Organization | None, subject: Subject, at: datetime | None = None
) -> list[PurposeState]:
    """Per purpose: the open grant, else the most recent ended one, else none, in the state `grant_state` gives
    it (active exactly where the consent guard says yes)."""
    now = at or timezone.now()
    by_purpose: dict[str, Grant] = {}
    grants = grant_list(organization=organization, subject=subject)
    for grant in grants.order_by("granted_at", "pk"):
        current = by_purpose.get(grant.purpose)
        if current is None or current.ended_at is not None or grant.ended_at is None:
            by_purpose[grant.purpose] = grant
    states = []
    for purpose in Purpose.values:
        grant = by_purpose.get(purpose)
        state = GrantState.NONE if grant is None else grant_state(grant, at=now)
        states.append(PurposeState(purpose, state, grant))
    return states


def consent_state_map(
    *, organization: Organization | None, subject: Subject, at: datetime | None = None
) -> dict[str, str]:
    """`consent_state` as {purpose: state value} (every purpose; "none" without a grant), in one narrow query
    (`guards.grant_states`): what a decision reads on every page view. Nothing for another organization's
    subject."""
    if organization is None or subject.organization_id != organization.pk:
        return {purpose: GrantState.NONE.value for purpose in Purpose.values}
    states = grant_states(organization_id=organization.pk, subject_id=subject.pk, at=at)
    return {purpose: states.get(purpose, GrantState.NONE).value for purpose in Purpose.values}


def ledger_list(*, organization: Organization | None, subject: Subject | None = None) -> QuerySet[LedgerEntry]:
    """Ledger entries of the organization (of one subject when given), in chain order."""
    entries = LedgerEntry.objects.for_organization(organization).order_by("sequence")
    if subject is not None:
        entries = entries.filter(subject_ref=str(subject.public_id))
    return entries


FUNNEL_EVENTS = (
    LedgerEntry.Event.SHOWN,
    LedgerEntry.Event.GRANTED,
    LedgerEntry.Event.REFUSED,
    LedgerEntry.Event.WITHDRAWN,
)


@dataclass(frozen=True)
class FunnelRow:
    """Consent funnel counts for one context (e.g. a campaign) and notice version."""

    context_ref: str
    notice_hash: str
    language: str
    shown: int
    granted: int
    refused: int
    withdrawn: int


def consent_funnel(*, organization: Organization | None, context_ref: str | None = None) -> list[FunnelRow]:
    """Counts of shown, granted, refused and withdrawn per context and notice version, from the ledger; with
    `context_ref`, of that context only (a campaign's report).

    `shown` counts visitors, not page loads: showings that carry a visitor ref (see
    `consent.services.shown_visitor_ref`) count once per distinct ref; older showings without one count each."""
    entries = LedgerEntry.objects.for_organization(organization).filter(event__in=FUNNEL_EVENTS)
    if context_ref is not None:
        entries = entries.filter(context_ref=context_ref)
    group = ("context_ref", "notice_hash", "language")
    decisions = (
        entries.exclude(event=LedgerEntry.Event.SHOWN).values(*group, "event").annotate(n=Count("pk")).order_by()
    )
    showings = (
        entries.filter(event=LedgerEntry.Event.SHOWN)
        .values(*group)
        .annotate(
            visitors=Count("payload__visitor", distinct=True),
            anonymous=Count("pk", filter=Q(payload__visitor__isnull=True)),
        )
        .order_by()
    )
    table: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in decisions:
        key = (row["context_ref"], row["notice_hash"], row["language"])
        table.setdefault(key, dict.fromkeys(FUNNEL_EVENTS, 0))[row["event"]] = row["n"]
    for row in showings:
        key = (row["context_ref"], row["notice_hash"], row["language"])
        table.setdefault(key, dict.fromkeys(FUNNEL_EVENTS, 0))[LedgerEntry.Event.SHOWN] = (
            row["visitors"] + row["anonymous"]
        )
    return [
        FunnelRow(context, notice_hash, language, **{str(event): count for event, count in counts.items()})
        for (context, notice_hash, language), counts in sorted(table.items())
    ]


def organization_get_public(*, slug: str) -> Organization | None:
    """An organization by its slug, for its public pages (retention schedule, notices)."""
    return Organization.objects.filter(slug=slug).first()


# --- The partner event feed ---------------------------------------------------------------------------------------

EVENT_FEED_DEFAULT_LIMIT = 100
EVENT_FEED_MAX_LIMIT = 1000


@dataclass(frozen=True)
class EventFeedPage:
    """One page of the feed: events after the cursor in sequence order, the cursor to pass next, whether more wait."""

    events: list[OutboxEvent]
    next_after: int
    has_more: bool


def event_feed_page(
    *, organization: Organization | None, after: int = 0, types: Iterable[str] | None = None,
    limit: int = EVENT_FEED_DEFAULT_LIMIT,
) -> EventFeedPage:
    """The organization's feed events with a sequence above `after`, oldest first, `types` only when given. Events
    are numbered in commit order (consent.outbox), so a consumer that passes `next_after` back never misses or
    repeats one. Without events, `next_after` stays `after`."""
    events = OutboxEvent.objects.for_organization(organization).filter(sequence__gt=after)
    if types is not None:
        events = events.filter(type__in=list(types))
    rows = list(events.order_by("sequence")[: limit + 1])
    page = rows[:limit]
    return EventFeedPage(page, page[-1].sequence if page else after, len(rows) > limit)
def data_request_list(*, organization: Organization | None, subject: Subject | None = None) -> QuerySet[DataRequest]:
    """Data subject requests of the organization (of one subject when given), newest first."""
    requests = DataRequest.objects.for_organization(organization)
    if subject is not None:
        requests = requests.filter(subject_id=subject.pk)
    return requests.order_by("-received_at", "-pk")


def data_request_get(*, organization: Organization | None, public_id: str | uuid.UUID) -> DataRequest | None:
    """One data subject request by its public id; None when missing or another organization's."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return data_request_list(organization=organization).filter(public_id=public_id).first()


def data_request_parts(*, request: DataRequest) -> list[PurgePart]:
    """An erasure's purge parts (which purger, owed or done, when), by purger; none for access and export."""
    if request.purge_request_id is None:
        return []
    return list(PurgePart.objects.filter(organization_id=request.organization_id,
                                         request_id=request.purge_request_id).order_by("purger", "category"))
