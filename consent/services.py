"""Writes of the consent app: notices, subjects, grants, withdrawals, refusals. Every decision lands in the ledger
in the same transaction as the change it records."""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from accounts.tokens import token_hash
from consent import derived, retention
from consent.ledger import ledger_append
from consent.models import (
    Channel,
    Grant,
    LedgerEntry,
    NoticeVersion,
    OutboxEvent,
    PurgeRequest,
    Purpose,
    ReplacedAccessToken,
    RetentionPolicy,
    Subject,
    purposes_key,
)
from consent.notice_text import compose_notice_text, text_hash
from consent.outbox import event_emit
from consent.purging import purge_request_record

ACCESS_TOKEN_BYTES = 32  # 256 random bits, URL-safe: 43 characters


class ConsentError(Exception):
    """A consent request that cannot be honoured; `code` is stable, the message explains it. Nothing was written."""

    code = "consent_invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


# --- Retention --------------------------------------------------------------------------------------------------


# The policy's period fields: one per retention category, and the consent's validity (not a retention category).
RETENTION_PERIOD_FIELDS = (*(category.field for category in retention.CATEGORIES), "grant_validity_days")


@dataclass(frozen=True)
class RetentionCapWarning:
    """A period saved lower than asked (or than was in force) because a legal cap applies."""

    category: retention.Category
    asked: int
    saved: int
    cap: retention.Cap
    recapped: bool = False  # the value was already saved and a change of jurisdiction lowered it

    def __str__(self) -> str:
        unit = "seconds" if self.category.unit == "seconds" else "days"
        how = f"{self.asked} {unit} in force" if self.recapped else f"{self.asked} {unit} asked"
        return f"{self.category.label}: {how}, saved as {self.saved} ({self.cap.name})"


class RetentionPolicySaved(NamedTuple):
    """What `retention_policy_set` saved, and where a cap lowered it."""

    policy: RetentionPolicy
    warnings: list[RetentionCapWarning]


def retention_periods_capped(
    *, asked: dict[str, int], current: dict[str, int], jurisdiction: str
) -> tuple[dict[str, int], list[RetentionCapWarning]]:
    """Every category's period as it is saved under `jurisdiction`: the asked value, else the one in force, each
    lowered to its cap (consent.retention.capped) with a warning. Below a category's minimum (or not a whole
    number) is a ConsentError. Pure: the admin form validates with it, the service saves with it."""
    saved: dict[str, int] = {}
    warnings: list[RetentionCapWarning] = []
    for category in retention.CATEGORIES:
        was_asked = asked.get(category.field) is not None
        raw = asked[category.field] if was_asked else current.get(category.field, category.default)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConsentError(f"{category.label}: give a whole number of {category.unit}.",
                               code="retention_period_invalid")
        if raw < category.minimum:
            raise ConsentError(
                f"{category.label}: at least {category.minimum} {category.unit}, {raw} given.",
                code="retention_below_minimum",
            )
        value, cap = retention.capped(category, raw, jurisdiction)
        saved[category.field] = value
        if cap is not None:
            warnings.append(RetentionCapWarning(category, raw, value, cap, recapped=not was_asked))
    return saved, warnings


def retention_policy_set(
    *, organization: Organization, jurisdiction: str | None = None, **periods: int | None
) -> RetentionPolicySaved:
    """Create or change the organization's retention policy. `periods` are RetentionPolicy field names
    (RETENTION_PERIOD_FIELDS); one not given (or None) keeps its value in force (the default on a new policy).
    A value above its legal cap under the jurisdiction is saved capped, with a warning naming the cap; a change
    of jurisdiction re-caps the values already saved, with warnings too. Below a minimum: ConsentError."""
    unknown = set(periods) - set(RETENTION_PERIOD_FIELDS)
    if unknown:
        raise TypeError(f"Unknown retention periods: {sorted(unknown)}")
    with transaction.atomic():
        policy = RetentionPolicy.objects.select_for_update().filter(organization=organization).first()
        policy = policy or RetentionPolicy(organization=organization)
        if jurisdiction is not None:
            if jurisdiction not in dict(retention.Jurisdiction.CHOICES):
                raise ConsentError(f"Unknown jurisdiction {jurisdiction!r}.", code="unknown_jurisdiction")
            policy.jurisdiction = jurisdiction
        current = {category.field: policy.period(category) for category in retention.CATEGORIES}
        saved, warnings = retention_periods_capped(asked=periods, current=current, jurisdiction=policy.jurisdiction)
        for field, value in saved.items():
            setattr(policy, field, value)
        if periods.get("grant_validity_days") is not None:
            policy.grant_validity_days = periods["grant_validity_days"]
        policy.full_clean()
        policy.save()
    return RetentionPolicySaved(policy, warnings)


# --- Notices ----------------------------------------------------------------------------------------------------


def notice_draft_create(
    *,
    organization: Organization,
    language: str,
    purposes: Iterable[str],
    controller_name: str,
    controller_contact: str,
    recipients: str = "",
    introduction: str = "",
    derived_attributes: Iterable[str] | None = None,
) -> NoticeVersion:
    """A new editable draft for a purpose set and language, naming `derived_attributes` (consent.derived; None:
    every attribute the engine can derive)."""
    notice = NoticeVersion(
        organization=organization,
        language=language,
        purposes=purposes_key(purposes),
        controller_name=controller_name,
        controller_contact=controller_contact,
        recipients=recipients,
        introduction=introduction,
        derived_attributes=_canonical_attributes(derived_attributes),
        version=_next_notice_version(organization=organization, language=language, purposes=purposes_key(purposes)),
    )
    notice.full_clean()
    notice.save()
    return notice


def _canonical_attributes(keys: Iterable[str] | None) -> str:
    """The stored form of an attribute choice (None: all); an unknown key is a ConsentError."""
    try:
        return derived.canonical(derived.ALL_KEYS if keys is None else keys)
    except ValueError as error:
        raise ConsentError(str(error), code="unknown_derived_attribute") from None


def _next_notice_version(*, organization: Organization, language: str, purposes: str) -> int:
    last = (
        NoticeVersion.objects.for_organization(organization)
        .filter(language=language, purposes=purposes)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return (last or 0) + 1


def notice_draft_copy(*, notice: NoticeVersion) -> NoticeVersion:
    """A new draft with the content of an existing version, to edit and publish as the next version."""
    return notice_draft_create(organization=notice.organization, **_notice_content(notice))


def notice_preview_text(*, notice: NoticeVersion) -> str:
    """The text a draft would publish with today's retention policy."""
    policy = RetentionPolicy.objects.filter(organization_id=notice.organization_id).first() or RetentionPolicy()
    return _compose(notice, policy.snapshot(), timezone.now())


def _notice_content(notice: NoticeVersion) -> dict[str, Any]:
    """What a marketer writes in a notice: the fields a copy carries over and the text is composed from."""
    return {
        "language": notice.language,
        "purposes": notice.purpose_list,
        "controller_name": notice.controller_name,
        "controller_contact": notice.controller_contact,
        "recipients": notice.recipients,
        "introduction": notice.introduction,
        "derived_attributes": notice.derived_attribute_set,
    }


def _compose(notice: NoticeVersion, schedule: dict[str, int | str], at: datetime) -> str:
    return compose_notice_text(
        version=notice.version, retention=schedule, published_at=at, **_notice_content(notice)
    )


@transaction.atomic
def notice_publish(*, notice: NoticeVersion) -> NoticeVersion:
    """Freeze a draft's text and hash and offer it for new grants; the version it replaces (same language,
    purposes and attribute choice) is superseded (its grants stay valid). Needs the organization's retention
    policy, which the text states."""
    notice = NoticeVersion.objects.select_for_update().get(pk=notice.pk)
    if notice.status != NoticeVersion.Status.DRAFT:
        raise ConsentError("Only a draft can be published.", code="notice_not_draft")
    policy = RetentionPolicy.objects.filter(organization_id=notice.organization_id).first()
    if policy is None:
        raise ConsentError("Set the retention policy first: the notice states it.", code="no_retention_policy")
    now = timezone.now()
    previous = NoticeVersion.objects.select_for_update().filter(
        organization_id=notice.organization_id,
        language=notice.language,
        purposes=notice.purposes,
        derived_attributes=notice.derived_attributes,
        status=NoticeVersion.Status.PUBLISHED,
    )
    for old in previous:
        old.status = NoticeVersion.Status.SUPERSEDED
        old.save(update_fields=["status", "updated_at"])
    snapshot = policy.snapshot()
    text = _compose(notice, snapshot, now)
    # A draft becomes published in one save; afterwards only the life-cycle fields may change.
    NoticeVersion.objects.filter(pk=notice.pk).update(
        status=NoticeVersion.Status.PUBLISHED,
        text=text,
        text_hash=text_hash(text),
        retention_snapshot=snapshot,
        published_at=now,
        updated_at=now,
    )
    return NoticeVersion.objects.get(pk=notice.pk)


@transaction.atomic
def notice_retire(*, notice: NoticeVersion) -> NoticeVersion:
    """Withdraw a published or superseded version: grants given under it no longer cover processing."""
    notice = NoticeVersion.objects.select_for_update().get(pk=notice.pk)
    if notice.status not in (NoticeVersion.Status.PUBLISHED, NoticeVersion.Status.SUPERSEDED):
        raise ConsentError("Only a published or superseded version can be retired.", code="notice_not_published")
    notice.status = NoticeVersion.Status.RETIRED
    notice.retired_at = timezone.now()
    notice.save(update_fields=["status", "retired_at", "updated_at"])
    return notice


# --- Subjects ---------------------------------------------------------------------------------------------------


def partner_ref_hash(*, organization: Organization, partner_user_id: str) -> str:
    """HMAC-SHA256 of a partner's user id under the organization's secret: findable again, not reversible."""
    return hmac.new(
        organization.subject_hash_secret.encode(), partner_user_id.encode(), hashlib.sha256
    ).hexdigest()


def subject_create(*, organization: Organization) -> Subject:
    """A new pseudonymous subject (a consent page visitor)."""
    return Subject.objects.create(organization=organization)


def subject_get_or_create_for_partner(*, organization: Organization, partner_user_id: str) -> tuple[Subject, bool]:
    """The subject for a partner's user id, created on first sight. The id itself is never stored."""
    if not partner_user_id or len(partner_user_id) > 256:
        raise ConsentError("partner_user_id must be 1 to 256 characters.", code="invalid_partner_user_id")
    ref = partner_ref_hash(organization=organization, partner_user_id=partner_user_id)
    subject = Subject.objects.filter(organization=organization, partner_ref_hash=ref).first()
    if subject is not None:
        return subject, False
    try:
        with transaction.atomic():
            return Subject.objects.create(organization=organization, partner_ref_hash=ref), True
    except IntegrityError:  # created by a concurrent call a moment ago
        return Subject.objects.get(organization=organization, partner_ref_hash=ref), False


@transaction.atomic
def subject_access_token_rotate(*, subject: Subject) -> str:
    """Issue a new "my data" token for the subject; the previous one stops working, and its hash is kept (without
    the subject) so that the old link can say it was replaced. Returns the token, once."""
    token = secrets.token_urlsafe(ACCESS_TOKEN_BYTES)
    # The row lock orders concurrent rotations: each records the hash the previous one left.
    previous = Subject.objects.select_for_update().filter(pk=subject.pk).values_list("access_token_hash", flat=True)
    previous_hash = previous.first() or ""
    if previous_hash:
        ReplacedAccessToken.objects.bulk_create(
            [ReplacedAccessToken(organization_id=subject.organization_id, token_hash=previous_hash)],
            ignore_conflicts=True,
        )
    Subject.objects.filter(pk=subject.pk).update(
        access_token_hash=token_hash(token), access_token_issued_at=timezone.now()
    )
    subject.access_token_hash = token_hash(token)
    return token


# --- Grants, refusals, withdrawals ------------------------------------------------------------------------------


def _check_notice_for_grant(
    *, organization: Organization, notice: NoticeVersion, purposes: list[str], language: str
) -> None:
    if notice.organization_id != organization.pk:
        raise ConsentError("Unknown notice.", code="unknown_notice")
    if notice.status != NoticeVersion.Status.PUBLISHED:
        raise ConsentError("This notice version is not the published one.", code="notice_not_published")
    if language != notice.language:
        raise ConsentError("The notice is not in this language.", code="language_mismatch")
    unknown = set(purposes) - set(Purpose.values)
    if unknown:
        raise ConsentError(f"Unknown purpose: {', '.join(sorted(unknown))}.", code="unknown_purpose")
    if not purposes:
        raise ConsentError("Name at least one purpose.", code="no_purpose")
    uncovered = set(purposes) - set(notice.purpose_list)
    if uncovered:
        raise ConsentError(
            f"The notice does not cover: {', '.join(sorted(uncovered))}.", code="purpose_not_in_notice"
        )


@transaction.atomic
def consent_grant(
    *,
    organization: Organization,
    subject: Subject,
    notice: NoticeVersion,
    purposes: Iterable[str],
    channel: str,
    evidence: dict[str, Any] | None = None,
    context_ref: str = "",
) -> list[Grant]:
    """Record explicit consent to each purpose under a published notice; an open grant for the same purpose is
    replaced. One `granted` ledger entry per call."""
    purposes = sorted(set(purposes))
    _check_notice_for_grant(organization=organization, notice=notice, purposes=purposes, language=notice.language)
    if channel not in Channel.values:
        raise ConsentError("Unknown channel.", code="unknown_channel")
    subject = Subject.objects.select_for_update().get(pk=subject.pk, organization=organization)
    if subject.erased_at is not None:
        raise ConsentError("This subject was erased.", code="subject_erased")
    # The person was told the schedule frozen into the notice; that, not today's policy, bounds the grant.
    validity = timedelta(days=notice.retention_snapshot["grant_validity_days"])
    now = timezone.now()
    replaced = list(Grant.objects.filter(subject=subject, purpose__in=purposes, ended_at__isnull=True))
    for old in replaced:
        old.ended_at, old.end_reason, old.end_channel = now, Grant.EndReason.REPLACED, channel
        old.save(update_fields=["ended_at", "end_reason", "end_channel"])
    grants = [
        Grant.objects.create(
            organization=organization,
            subject=subject,
            purpose=purpose,
            notice=notice,
            notice_hash=notice.text_hash,
            language=notice.language,
            channel=channel,
            context_ref=context_ref,
            evidence=evidence or {},
            granted_at=now,
            expires_at=now + validity,
        )
        for purpose in purposes
    ]
    ledger_append(
        organization=organization,
        event=LedgerEntry.Event.GRANTED,
        subject_ref=str(subject.public_id),
        purposes=purposes_key(purposes),
        notice_hash=notice.text_hash,
        language=notice.language,
        channel=channel,
        context_ref=context_ref,
        evidence=evidence,
        payload={"grants": [g.pk for g in grants], "replaced": [g.pk for g in replaced]},
        occurred_at=now,
    )
    event_emit(
        organization=organization, type=OutboxEvent.Type.CONSENT_GRANTED, subject_ref=str(subject.public_id),
        payload={"purposes": purposes, "notice_hash": notice.text_hash, "language": notice.language,
                 "channel": channel, "grants": [g.pk for g in grants], "expires_at": (now + validity).isoformat()},
    )
    return grants


@transaction.atomic
def consent_refuse(
    *,
    organization: Organization,
    notice: NoticeVersion,
    purposes: Iterable[str],
    channel: str,
    evidence: dict[str, Any] | None = None,
    context_ref: str = "",
    subject: Subject | None = None,
) -> LedgerEntry:
    """Record a refusal. Nothing but the ledger entry is written; no subject is created for it."""
    purposes = sorted(set(purposes))
    if notice.organization_id != organization.pk:
        raise ConsentError("Unknown notice.", code="unknown_notice")
    if set(purposes) - set(Purpose.values):
        raise ConsentError("Unknown purpose.", code="unknown_purpose")
    return ledger_append(
        organization=organization,
        event=LedgerEntry.Event.REFUSED,
        subject_ref=str(subject.public_id) if subject else "",
        purposes=purposes_key(purposes),
        notice_hash=notice.text_hash,
        language=notice.language,
        channel=channel,
        context_ref=context_ref,
        evidence=evidence,
    )


def shown_visitor_ref(*, organization: Organization, notice_hash: str, context_ref: str, visitor_id: str) -> str:
    """Who saw a notice, as the funnel needs it: a keyed hash of the browser's random visitor id, the context and
    the notice version. Equal for reloads of one notice on one campaign in one browser, unlinkable otherwise (across
    notice versions, campaigns and organizations), and never the id itself."""
    message = f"shown|{context_ref}|{notice_hash}|{visitor_id}".encode()
    return hmac.new(organization.subject_hash_secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def consent_shown(
    *,
    organization: Organization,
    notice: NoticeVersion,
    channel: str,
    context_ref: str = "",
    visitor_id: str = "",
) -> LedgerEntry:
    """Record that a notice was shown (the top of the consent funnel). No evidence: a view is not a decision.
    Every showing is kept; with `visitor_id` (the browser's random id) the funnel counts a visitor once per
    notice version (see `shown_visitor_ref`)."""
    payload = {}
    if visitor_id:
        payload["visitor"] = shown_visitor_ref(
            organization=organization, notice_hash=notice.text_hash, context_ref=context_ref, visitor_id=visitor_id
        )
    return ledger_append(
        organization=organization,
        event=LedgerEntry.Event.SHOWN,
        purposes=notice.purposes,
        notice_hash=notice.text_hash,
        language=notice.language,
        channel=channel,
        context_ref=context_ref,
        payload=payload,
    )


def _grants_end(
    *, organization: Organization, subject: Subject, purposes: list[str] | None, channel: str,
    evidence: dict[str, Any] | None,
) -> list[Grant]:
    """End the locked subject's open grants for `purposes` (all when None) as withdrawn, with their ledger entries."""
    open_grants = Grant.objects.filter(subject=subject, ended_at__isnull=True)
    if purposes is not None:
        open_grants = open_grants.filter(purpose__in=purposes)
    withdrawn = list(open_grants.order_by("purpose"))
    if not withdrawn:
        return []
    now = timezone.now()
    for grant in withdrawn:
        grant.ended_at, grant.end_reason, grant.end_channel = now, Grant.EndReason.WITHDRAWN, channel
        grant.save(update_fields=["ended_at", "end_reason", "end_channel"])
    # One entry per notice and context, so funnel counts per campaign and notice version stay exact.
    groups: dict[tuple[str, str, str], list[Grant]] = {}
    for grant in withdrawn:
        groups.setdefault((grant.notice_hash, grant.language, grant.context_ref), []).append(grant)
    for (notice_hash, language, context_ref), grants in groups.items():
        ledger_append(
            organization=organization,
            event=LedgerEntry.Event.WITHDRAWN,
            subject_ref=str(subject.public_id),
            purposes=purposes_key(g.purpose for g in grants),
            notice_hash=notice_hash,
            language=language,
            channel=channel,
            context_ref=context_ref,
            evidence=evidence,
            payload={"grants": [g.pk for g in grants]},
            occurred_at=now,
        )
    event_emit(
        organization=organization, type=OutboxEvent.Type.CONSENT_WITHDRAWN, subject_ref=str(subject.public_id),
        payload={"purposes": sorted({g.purpose for g in withdrawn}), "channel": channel,
                 "grants": [g.pk for g in withdrawn]},
    )
    return withdrawn


@transaction.atomic
def consent_withdraw(
    *,
    organization: Organization,
    subject: Subject,
    purposes: Iterable[str] | None = None,
    channel: str,
    evidence: dict[str, Any] | None = None,
) -> list[Grant]:
    """Withdraw the subject's open grants for `purposes` (all when None). Idempotent: withdrawing what is not
    granted writes nothing. A purge request for the withdrawn purposes is recorded with it (consent.purging)."""
    wanted = sorted(set(purposes)) if purposes is not None else None
    if wanted is not None and set(wanted) - set(Purpose.values):
        raise ConsentError("Unknown purpose.", code="unknown_purpose")
    subject = Subject.objects.select_for_update().get(pk=subject.pk, organization=organization)
    withdrawn = _grants_end(organization=organization, subject=subject, purposes=wanted, channel=channel,
                            evidence=evidence)
    if not withdrawn:
        return []
    purge_request_record(
        organization_id=organization.pk, reason=PurgeRequest.Reason.CONSENT_WITHDRAWN, subject_id=subject.pk,
        subject_ref=str(subject.public_id), purposes={g.purpose for g in withdrawn},
    )
    return withdrawn


@transaction.atomic
def subject_erase(
    *, organization: Organization, subject: Subject, channel: str, evidence: dict[str, Any] | None = None
) -> PurgeRequest | None:
    """Erase a subject: its open grants withdrawn (in the ledger), the subject marked erased so that the guard
    refuses it for good, and a purge of everything every app keeps about it recorded in the same transaction.
    Idempotent: erasing an erased subject does nothing and returns None."""
    subject = Subject.objects.select_for_update().get(pk=subject.pk, organization=organization)
    if subject.erased_at is not None:
        return None
    _grants_end(organization=organization, subject=subject, purposes=None, channel=channel, evidence=evidence)
    Subject.objects.filter(pk=subject.pk).update(erased_at=timezone.now())
    return purge_request_record(
        organization_id=organization.pk, reason=PurgeRequest.Reason.SUBJECT_ERASED, subject_id=subject.pk,
        subject_ref=str(subject.public_id), purposes=Purpose.values,
    )


def grants_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """End grants whose time ran out and record `expired` in the ledger; the guard refuses them already.
    Returns how many were ended; the periodic task calls it until nothing is left."""
    now = now or timezone.now()
    ids = list(Grant.objects.open().filter(expires_at__lte=now).values_list("pk", flat=True)[:limit])
    ended = 0
    for grant_id in ids:
        with transaction.atomic():
            grant = Grant.objects.select_related("subject", "organization").filter(pk=grant_id).first()
            if grant is None:
                continue
            Subject.objects.select_for_update().filter(pk=grant.subject_id).first()
            grant.refresh_from_db(fields=["ended_at"])
            if grant.ended_at is not None:
                continue
            grant.ended_at, grant.end_reason, grant.end_channel = now, Grant.EndReason.EXPIRED, Channel.SYSTEM
            grant.save(update_fields=["ended_at", "end_reason", "end_channel"])
            ledger_append(
                organization=grant.organization,
                event=LedgerEntry.Event.EXPIRED,
                subject_ref=str(grant.subject.public_id),
                purposes=grant.purpose,
                notice_hash=grant.notice_hash,
                language=grant.language,
                channel=Channel.SYSTEM,
                context_ref=grant.context_ref,
                payload={"grants": [grant.pk]},
                occurred_at=now,
            )
            purge_request_record(
                organization_id=grant.organization_id, reason=PurgeRequest.Reason.CONSENT_EXPIRED,
                subject_id=grant.subject_id, subject_ref=str(grant.subject.public_id), purposes=[grant.purpose],
            )
            ended += 1
    return ended


@transaction.atomic
def consent_give_on_page(
    *,
    organization: Organization,
    notice: NoticeVersion,
    purposes: Iterable[str],
    offered_purposes: Iterable[str],
    evidence: dict[str, Any] | None = None,
    context_ref: str = "",
) -> tuple[Subject, str]:
    """A visitor of a consent page ticked `purposes` out of `offered_purposes` and pressed "consent": a new
    pseudonymous subject, its grants, a refusal of what was left unticked, and a "my data" token (returned once)."""
    purposes, offered = sorted(set(purposes)), sorted(set(offered_purposes))
    if not purposes:
        raise ConsentError("Tick at least one purpose, or refuse.", code="no_purpose")
    if set(purposes) - set(offered):
        raise ConsentError("A purpose was not offered on this page.", code="purpose_not_offered")
    _check_notice_for_grant(organization=organization, notice=notice, purposes=purposes, language=notice.language)
    subject = subject_create(organization=organization)
    consent_grant(
        organization=organization,
        subject=subject,
        notice=notice,
        purposes=purposes,
        channel=Channel.CONSENT_PAGE,
        evidence=evidence,
        context_ref=context_ref,
    )
    unticked = sorted(set(offered) - set(purposes))
    if unticked:
        consent_refuse(
            organization=organization,
            notice=notice,
            purposes=unticked,
            channel=Channel.CONSENT_PAGE,
            evidence=evidence,
            context_ref=context_ref,
            subject=subject,
        )
    return subject, subject_access_token_rotate(subject=subject)
