"""Decisions and events: which variant a visitor of a running campaign gets, and why, appended to the decision log;
and the impressions, clicks and conversions posted against a decision (docs/personalization.md).

A decision costs few queries: the campaign's rules and variants are loaded once per process and version
(`campaign_plan`; the version is a token in Django's cache that a save or delete of a campaign, rule or variant
replaces, and a process trusts the one it read for PLAN_VERSION_RECHECK_SECONDS), consent is asked live every
time (`consent.selectors.consent_state_map`: one narrow query, the guard's own state function, active exactly
where the guard says yes), the subject's face signals come from their cache, the visitor's history is one query,
and the log is one INSERT.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Organization
from campaigns.assignment import NOT_ENTERED, Assignment, assign, bucket_ranges
from campaigns.conditions import (
    ConditionError,
    EvaluationContext,
    condition_validate,
    rule_evaluate,
    uses_face,
    uses_segments,
)
from campaigns.models import (
    Allocation,
    Campaign,
    Decision,
    Event,
    Experiment,
    ExperimentArm,
    ExperimentPhase,
    Exposure,
    Rule,
    Variant,
)
from campaigns.request_context import RequestAttributes
from campaigns.selectors import decision_get
from config.broker import REDIS_ERRORS
from config.rawsql import insert_one
from consent.guards import GrantState
from consent.models import Purpose, Subject
from consent.selectors import consent_state_map
from faceanalysis.selectors import face_signals_for_decision
from segments.dispatch import send_subject_refresh
from segments.membership import subject_segment_keys

logger = logging.getLogger(__name__)

VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CHANNELS = ("api", "snippet")
# An event's name and client id: short, printable, no control characters.
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{0,64}$")
CLIENT_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217 alphabetic code
VALUE_LIMIT = Decimal("10000000000")  # Event.value holds 14 digits, 4 of them decimals
VALUE_STEP = Decimal("0.0001")
VALUE_KINDS = (Event.Kind.CONVERSION, Event.Kind.CUSTOM)
# An event may be reported a little ahead of the server's clock, not days.
MAX_CLOCK_SKEW = timedelta(minutes=5)
INVALID_RULE = "invalid_rule"  # a stored tree the validator refuses, or a variant of another campaign


class DecisionError(Exception):
    """A decision or event that cannot be served, with the HTTP status and stable code the API answers with."""

    def __init__(self, message: str, *, code: str, status_code: int = 400,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.details = details or {}


@dataclass(frozen=True)
class TraceStep:
    """One rule tried: matched, not_matched (with the deciding node) or skipped (with the node and reason)."""

    rule_id: int
    rule_name: str
    status: str
    node: str | None
    reason: str | None

    def as_log(self) -> dict[str, Any]:
        """What the decision log keeps of it: ids and codes, never a face value (nor the rule's name)."""
        return {"rule": self.rule_id, "status": self.status, "node": self.node, "reason": self.reason}


@dataclass(frozen=True)
class Evaluation:
    """The choice: the variant, the rule that chose it (None for sticky and default), why, and the trace; for
    the experiment, the arm (None in the holdout) and whether this is the visitor's first entry into the phase."""

    variant: Variant
    rule: Rule | None
    reason: str  # Decision.Reason value
    trace: tuple[TraceStep, ...]
    arm: ExperimentArm | None = None
    exposed_now: bool = False


# --- The campaign's rules and variants, once per process and version ---------------------------------------------


@dataclass(frozen=True)
class PlannedRule:
    """An enabled rule as decisions evaluate it: its tree normalised, or invalid (skipped with INVALID_RULE)."""

    rule: Rule
    condition: Any
    valid: bool
    face: bool
    segments: bool = False


@dataclass(frozen=True)
class PlannedExperiment:
    """The running experiment's current phase as decisions assign it: arms in GrowthBook's variation order (each
    with its variant loaded), the bucket ranges of the allocation in force, the seed and holdout share."""

    experiment: Experiment
    phase_id: int
    allocation_number: int
    arms: tuple[ExperimentArm, ...]
    ranges: tuple[tuple[float, float], ...]
    seed: str
    holdout: float

    def arm_by_id(self, arm_id: int) -> ExperimentArm | None:
        return next((arm for arm in self.arms if arm.pk == arm_id), None)


@dataclass(frozen=True)
class CampaignPlan:
    """A campaign's variants, its enabled rules in order and its running experiment, as of one version."""

    campaign_id: int
    variants: dict[int, Variant]
    default: Variant | None
    rules: tuple[PlannedRule, ...]
    experiment: PlannedExperiment | None = None

    @property
    def uses_face(self) -> bool:
        return any(planned.face for planned in self.rules)

    @property
    def uses_segments(self) -> bool:
        return any(planned.segments for planned in self.rules)


PLAN_CACHE_SIZE = 1000  # campaigns per process
# A process trusts the version it last read for this long before asking the cache again: an edit made through
# another process reaches this one's decisions within a second, and a decision saves a Redis round trip.
PLAN_VERSION_RECHECK_SECONDS = 1.0
_plans: OrderedDict[int, tuple[str, CampaignPlan, float]] = OrderedDict()
_plans_lock = threading.Lock()


def _version_key(campaign_id: int) -> str:
    return f"campaigns:plan-version:{campaign_id}"


def campaign_plan_changed(*, campaign_id: int) -> None:
    """A campaign, one of its rules or variants changed: every process loads its plan again. Called by the
    receivers in campaigns.apps (saves and deletes); a write that bypasses them (a queryset update) calls it."""
    def bump() -> None:
        with _plans_lock:
            _plans.pop(campaign_id, None)
        try:
            cache.set(_version_key(campaign_id), uuid.uuid4().hex, timeout=None)
        except REDIS_ERRORS:
            logger.warning("cache unavailable; campaign plans are read from the database until it is back")

    bump()  # this process (and the caller's transaction) sees it at once
    # and again once committed: a process that loaded the rows between the two bumps loaded the old ones
    transaction.on_commit(bump)


def _current_version(campaign_id: int) -> str | None:
    """The campaign's plan version from the cache (a new one when missing); None when the cache is away."""
    key = _version_key(campaign_id)
    try:
        version = cache.get(key)
        if version is None:
            cache.add(key, uuid.uuid4().hex, timeout=None)
            version = cache.get(key)
    except REDIS_ERRORS:
        return None
    return version


def _plan_load(campaign: Campaign) -> CampaignPlan:
    """Two queries: the campaign's variants, and its enabled rules in priority order."""
    variants = {v.pk: v for v in Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign)}
    default = next((v for v in variants.values() if v.is_default), None)
    rules = Rule.objects.filter(organization_id=campaign.organization_id, campaign=campaign, enabled=True)
    planned = []
    for rule in rules.order_by("priority", "pk"):
        try:
            condition = condition_validate(rule.condition, segment_known=lambda key: True)
            valid = rule.variant_id in variants
        except (ConditionError, TypeError, ValueError, KeyError):
            condition, valid = rule.condition, False
        if not valid:
            logger.warning("rule %s of campaign %s cannot be evaluated; it is skipped", rule.pk, campaign.pk)
        planned.append(PlannedRule(rule, condition, valid, valid and uses_face(condition),
                                   valid and uses_segments(condition)))
    return CampaignPlan(campaign.pk, variants, default, tuple(planned), _experiment_load(campaign, variants))


def _experiment_load(campaign: Campaign, variants: dict[int, Variant]) -> PlannedExperiment | None:
    """The running experiment's open phase and its latest allocation (three small queries), or None. A phase whose
    arms are no longer all variants of the campaign is not served (logged): visitors get rules and the default."""
    experiment = Experiment.objects.filter(
        organization_id=campaign.organization_id, campaign=campaign, status=Experiment.Status.RUNNING
    ).first()
    if experiment is None:
        return None
    phase = ExperimentPhase.objects.filter(experiment=experiment, ended_at__isnull=True).order_by("-number").first()
    if phase is None:
        return None
    allocation = Allocation.objects.filter(phase=phase).order_by("-number").first()
    weights = allocation.weights if allocation is not None else phase.weights
    arms_by_id = {arm.pk: arm for arm in ExperimentArm.objects.filter(experiment=experiment, pk__in=phase.arm_ids)}
    arms = [arms_by_id.get(arm_id) for arm_id in phase.arm_ids]
    if any(arm is None or arm.variant_id not in variants for arm in arms) or len(weights) != len(arms):
        logger.warning("experiment %s of campaign %s cannot be served; it is skipped", experiment.pk, campaign.pk)
        return None
    for arm in arms:
        arm.variant = variants[arm.variant_id]
    return PlannedExperiment(
        experiment=experiment, phase_id=phase.pk, allocation_number=allocation.number if allocation else 0,
        arms=tuple(arms), ranges=tuple(bucket_ranges(weights, phase.coverage)), seed=phase.seed,
        holdout=phase.holdout,
    )


def campaign_plan(campaign: Campaign) -> CampaignPlan:
    """The campaign's plan, from this process's memory while its version holds (a cache read at most once per
    PLAN_VERSION_RECHECK_SECONDS; a change made in this process is seen at once), else loaded."""
    now = time.monotonic()
    with _plans_lock:
        held = _plans.get(campaign.pk)
        if held is not None and now - held[2] < PLAN_VERSION_RECHECK_SECONDS:
            _plans.move_to_end(campaign.pk)
            return held[1]
    version = _current_version(campaign.pk)
    if version is not None and held is not None and held[0] == version:
        with _plans_lock:
            _plans[campaign.pk] = (version, held[1], now)
            _plans.move_to_end(campaign.pk)
        return held[1]
    plan = _plan_load(campaign)
    if version is not None:
        with _plans_lock:
            _plans[campaign.pk] = (version, plan, now)
            _plans.move_to_end(campaign.pk)
            while len(_plans) > PLAN_CACHE_SIZE:
                _plans.popitem(last=False)
    return plan


# --- Choosing ---------------------------------------------------------------------------------------------------


def _no_default() -> DecisionError:
    return DecisionError("The campaign has no default variant.", code="no_default_variant", status_code=409)


@dataclass(frozen=True)
class ExperimentEntry:
    """What the experiment says of a visitor no rule claimed: the exposure they already have in the open phase
    (`exposed_arm_id`: an arm id, HOLDOUT_ARM in the holdout), or the assignment their hash gives."""

    exposed_arm_id: int | None
    assignment: Assignment = NOT_ENTERED


HOLDOUT_ARM = 0  # how the history query reports an exposure in the holdout (its arm is NULL)


def experiment_entry(plan: CampaignPlan, *, visitor_id: str, exposed_arm_id: int | None) -> ExperimentEntry | None:
    """None when the campaign runs no experiment; else the visitor's earlier exposure or their hash's arm."""
    experiment = plan.experiment
    if experiment is None:
        return None
    if exposed_arm_id is not None:
        return ExperimentEntry(exposed_arm_id)
    ranges = experiment.ranges
    return ExperimentEntry(None, assign(seed=experiment.seed, visitor_id=visitor_id, ranges=ranges,
                                        holdout=experiment.holdout))


def _experiment_choice(plan: CampaignPlan, entry: ExperimentEntry, trace: tuple[TraceStep, ...]) -> Evaluation | None:
    """The experiment's evaluation for a visitor it takes: their arm's variant, or the default in the holdout."""
    experiment = plan.experiment
    if experiment is None:
        return None
    if entry.exposed_arm_id is not None:
        if entry.exposed_arm_id == HOLDOUT_ARM:
            return Evaluation(plan.default, None, Decision.Reason.HOLDOUT, trace) if plan.default else None
        arm = experiment.arm_by_id(entry.exposed_arm_id)
        return None if arm is None else Evaluation(arm.variant, None, Decision.Reason.EXPERIMENT, trace, arm)
    if entry.assignment.holdout:
        if plan.default is None:
            return None
        return Evaluation(plan.default, None, Decision.Reason.HOLDOUT, trace, None, exposed_now=True)
    if entry.assignment.arm is None:
        return None
    arm = experiment.arms[entry.assignment.arm]
    return Evaluation(arm.variant, None, Decision.Reason.EXPERIMENT, trace, arm, exposed_now=True)


def decision_evaluate(
    *, campaign: Campaign, context: EvaluationContext, sticky_variant_id: int | None = None,
    plan: CampaignPlan | None = None, experiment: ExperimentEntry | None = None,
) -> Evaluation:
    """Pure choice over the campaign's plan: rules by ascending priority, the first that matches wins; else the
    running experiment for a visitor it takes (`experiment`, from experiment_entry); else the sticky variant (when
    still a variant of the campaign), else the default. A rule whose tree cannot be evaluated is skipped
    (INVALID_RULE), never an error. The campaign's setting of use is enforced whatever the context says. Used by
    decision_make and by the admin's preview. `plan`: the campaign's, when the caller has it already."""
    plan = plan or campaign_plan(campaign)
    if campaign.emotion_recognition_forbidden and not context.emotion_recognition_forbidden:
        context = dataclasses.replace(context, emotion_recognition_forbidden=True)
    trace: list[TraceStep] = []
    for planned in plan.rules:
        rule = planned.rule
        if not planned.valid:
            trace.append(TraceStep(rule.pk, rule.name, "skipped", "condition", INVALID_RULE))
            continue
        try:
            outcome = rule_evaluate(planned.condition, context)
        except (ConditionError, TypeError, ValueError, KeyError):  # a tree the validator let through, malformed
            logger.warning("rule %s of campaign %s failed to evaluate; it is skipped", rule.pk, campaign.pk)
            trace.append(TraceStep(rule.pk, rule.name, "skipped", "condition", INVALID_RULE))
            continue
        trace.append(TraceStep(rule.pk, rule.name, outcome.status, outcome.node, outcome.reason))
        if outcome.status == "matched":
            return Evaluation(plan.variants[rule.variant_id], rule, Decision.Reason.RULE, tuple(trace))
    if experiment is not None:
        chosen = _experiment_choice(plan, experiment, tuple(trace))
        if chosen is not None:
            return chosen
    if sticky_variant_id is not None and sticky_variant_id in plan.variants:
        return Evaluation(plan.variants[sticky_variant_id], None, Decision.Reason.STICKY, tuple(trace))
    if plan.default is None:
        raise _no_default()
    return Evaluation(plan.default, None, Decision.Reason.DEFAULT, tuple(trace))


def _segments(campaign: Campaign, subject: Subject | None) -> frozenset[str]:
    """The subject's segment keys, through the `segments.membership` hook (asked only when a rule names one)."""
    if subject is None:
        return frozenset()
    return subject_segment_keys(organization_id=campaign.organization_id, subject_id=subject.pk)


def decision_context(
    *, campaign: Campaign, subject: Subject | None, attributes: RequestAttributes, plan: CampaignPlan | None = None
) -> EvaluationContext:
    """What rules read for a decision: the request's attributes; the subject's consent state per purpose, asked
    live (one query, the guard's answer); face signals only while consent to face analysis AND to personalization
    is live (else `face_unavailable` says which is missing), and only when a rule of the campaign reads them;
    segments through their hook. An anonymous visitor, or a subject of another organization, has no consent."""
    forbidden = campaign.emotion_recognition_forbidden
    if subject is None or subject.organization_id != campaign.organization_id:
        consent = {purpose: GrantState.NONE.value for purpose in Purpose.values}
        return EvaluationContext(
            request=attributes, consent=consent, face=None, face_unavailable="no_subject",
            emotion_recognition_forbidden=forbidden,
        )
    organization = campaign.organization
    now = timezone.now()
    consent = consent_state_map(organization=organization, subject=subject, at=now)
    unavailable = None
    if consent.get(Purpose.FACE_ANALYSIS) != GrantState.ACTIVE:
        unavailable = "no_face_analysis_consent"
    elif consent.get(Purpose.PERSONALIZATION) != GrantState.ACTIVE:
        unavailable = "no_personalization_consent"
    face = None
    plan = plan or campaign_plan(campaign)
    if unavailable is None and plan.uses_face:
        face = face_signals_for_decision(organization=organization, subject=subject, now=now)
    return EvaluationContext(
        request=attributes, consent=consent, face=face, face_unavailable=unavailable,
        segments=_segments(campaign, subject) if plan.uses_segments else frozenset(),
        emotion_recognition_forbidden=forbidden,
    )


def campaign_require_running(campaign: Campaign, *, now: datetime | None = None) -> None:
    """409 `campaign_ended` once it ended (or its end passed before beat moved it), 409 `campaign_not_running`
    while draft, scheduled or paused."""
    now = now or timezone.now()
    if campaign.status == Campaign.Status.ENDED or (campaign.ends_at is not None and campaign.ends_at <= now):
        raise DecisionError("The campaign has ended.", code="campaign_ended", status_code=409)
    if campaign.status != Campaign.Status.RUNNING:
        raise DecisionError("The campaign is not running.", code="campaign_not_running", status_code=409)


@functools.cache
def _history_sql(*, with_exposure: bool) -> str:
    """The visitor-history query, written once: on every page view, where compiling the ORM's form of it cost
    more than running it. Both halves use the (campaign, visitor_id, -created_at) index; the exposure, asked only
    while an experiment runs, the (phase, visitor_id) unique index."""
    table = connection.ops.quote_name(Decision._meta.db_table)
    exposures = connection.ops.quote_name(Exposure._meta.db_table)
    # The table names are the models' own, quoted; values are parameters.
    exposure = (
        f"(SELECT COALESCE(arm_id, {HOLDOUT_ARM}) FROM {exposures} WHERE phase_id = %s AND visitor_id = %s)"  # noqa: S608
        if with_exposure else "NULL"
    )
    return (
        f"SELECT EXISTS (SELECT 1 FROM {table} WHERE campaign_id = %s AND visitor_id = %s), "  # noqa: S608
        f"(SELECT variant_id FROM {table} WHERE campaign_id = %s AND visitor_id = %s AND reason IN (%s, %s) "
        f"ORDER BY created_at DESC, id DESC LIMIT 1), {exposure}"
    )


def _visitor_history(
    campaign: Campaign, visitor_id: str, phase_id: int | None
) -> tuple[bool, int | None, int | None]:
    """One query: whether the visitor has an earlier decision in the campaign, the variant of their latest default
    or sticky one (never a rule's: a face rule's choice must not outlive the consent it rested on), and their arm
    in the running experiment's open phase `phase_id` (HOLDOUT_ARM in its holdout, None when not exposed or no
    experiment runs)."""
    kept = (Decision.Reason.DEFAULT.value, Decision.Reason.STICKY.value)
    params = [campaign.pk, visitor_id, campaign.pk, visitor_id, *kept]
    if phase_id is not None:
        params += [phase_id, visitor_id]
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(with_exposure=phase_id is not None), params)
        returning, sticky, exposed_arm = cursor.fetchone()
    return bool(returning), sticky, exposed_arm


def _exposure_record(plan: CampaignPlan, decision: Decision, evaluation: Evaluation) -> None:
    """The visitor's first entry into the open phase; a concurrent first decision of the same visitor may have
    written it already (the unique (phase, visitor) index keeps one, and the hash gives both the same arm)."""
    experiment = plan.experiment
    Exposure.objects.bulk_create(
        [Exposure(
            organization_id=decision.organization_id, experiment_id=experiment.experiment.pk,
            phase_id=experiment.phase_id, campaign_id=decision.campaign_id, arm=evaluation.arm,
            allocation_number=experiment.allocation_number, visitor_id=decision.visitor_id,
            subject_id=decision.subject_id, device=decision.attributes.get("device", "")[:16],
            language=decision.attributes.get("language", "")[:16], exposed_at=decision.created_at,
        )],
        ignore_conflicts=True,
    )


def decision_make(
    *, campaign: Campaign, visitor_id: str, subject: Subject | None, attributes: RequestAttributes, channel: str
) -> Decision:
    """Decide for a visitor of a running campaign and append the decision to the log (one INSERT). The visitor is
    returning once they have an earlier decision here; without a matching rule they keep the variant of their
    latest default or sticky decision. `subject` (recognised by the caller, of the campaign's organization) brings
    consent states and face signals; None is an anonymous visitor."""
    campaign_require_running(campaign)
    if not isinstance(visitor_id, str) or not VISITOR_ID.match(visitor_id):
        raise DecisionError("visitor_id must be 16 to 64 of A-Z, a-z, 0-9, _ and -.", code="invalid_visitor_id")
    if channel not in CHANNELS:
        raise DecisionError("Unknown channel.", code="invalid_channel")
    if subject is not None and subject.organization_id != campaign.organization_id:
        raise DecisionError("No such subject.", code="not_found", status_code=404)
    plan = campaign_plan(campaign)  # one cache read for the whole decision
    phase_id = plan.experiment.phase_id if plan.experiment is not None else None
    returning, sticky, exposed_arm = _visitor_history(campaign, visitor_id, phase_id)
    attributes = dataclasses.replace(attributes, returning=returning)
    context = decision_context(campaign=campaign, subject=subject, attributes=attributes, plan=plan)
    entry = experiment_entry(plan, visitor_id=visitor_id, exposed_arm_id=exposed_arm)
    evaluation = decision_evaluate(
        campaign=campaign, context=context, sticky_variant_id=sticky, plan=plan, experiment=entry
    )
    decision = Decision(
        organization_id=campaign.organization_id, campaign=campaign, visitor_id=visitor_id, subject=subject,
        variant=evaluation.variant, rule=evaluation.rule, experiment_arm=evaluation.arm, reason=evaluation.reason,
        channel=channel, trace=[step.as_log() for step in evaluation.trace], attributes=attributes.coarse(),
    )
    experiment_decided = evaluation.reason in (Decision.Reason.EXPERIMENT, Decision.Reason.HOLDOUT)
    decision.experiment = plan.experiment.experiment if experiment_decided else None
    if not evaluation.exposed_now:
        insert_one(decision)  # SQL built once: the one write on most answers' path (no save signals on the log)
        return decision
    with transaction.atomic():  # the decision and the exposure it starts, together
        insert_one(decision)
        _exposure_record(plan, decision, evaluation)
    return decision


# --- Events ------------------------------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> DecisionError:
    return DecisionError(f"{field}: {message}", code="invalid", details={field: [message]})


def _event_value(kind: str, value: Any, currency: str) -> tuple[Decimal | None, str]:
    if value is None:
        if currency:
            raise _invalid("currency", "A currency goes with a value.")
        return None, ""
    if kind not in VALUE_KINDS:
        raise _invalid("value", "Only conversion and custom events carry a value.")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise _invalid("value", "A number.")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _invalid("value", "A number.") from None
    if not amount.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise _invalid("value", "A finite number.")
    # Checked before rounding (a huge number cannot be rounded to 4 places) and after (it may round up to the limit).
    if not Decimal(0) <= amount < VALUE_LIMIT or amount.quantize(VALUE_STEP) >= VALUE_LIMIT:
        raise _invalid("value", f"At least 0 and below {VALUE_LIMIT}.")
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise _invalid("currency", "An ISO 4217 code of three capital letters (EUR) goes with a value.")
    return amount.quantize(VALUE_STEP), currency


def _exposure_for_event(decision: Decision) -> int | None:
    """The visitor's exposure an event on `decision` counts for: their entry into an open phase of the campaign's
    experiment at or before the decision was made (intention to treat: whatever later decided their variant).
    None when they never entered, or only after this decision; an event received once the phase ended counts for
    none."""
    return (
        Exposure.objects.filter(
            campaign_id=decision.campaign_id, visitor_id=decision.visitor_id, phase__ended_at__isnull=True,
            exposed_at__lte=decision.created_at,
        )
        .order_by("-exposed_at").values_list("pk", flat=True).first()
    )


def _existing_event(decision: Decision, client_event_id: str) -> Event | None:
    return Event.objects.filter(decision=decision, client_event_id=client_event_id).first()


def event_record(
    *, organization: Organization, decision_public_id: Any, visitor_id: str | None, kind: str, name: str,
    value: Decimal | None, currency: str, client_event_id: str, occurred_at: datetime | None,
) -> tuple[Event, bool]:
    """Record an event on one of the organization's decisions, attributed to the decision's campaign, variant, rule
    and subject; (event, True) when recorded, (the earlier event, False) when this client event id was already
    recorded for the decision, also when two posts race (the unique constraint decides). With `visitor_id` (the
    snippet) the decision must be that visitor's. Unknown, foreign and another visitor's decisions: 404."""
    decision = decision_get(organization=organization, public_id=decision_public_id)
    if decision is None or (visitor_id is not None and visitor_id != decision.visitor_id):
        raise DecisionError("No such decision.", code="not_found", status_code=404)
    if kind not in Event.Kind.values:
        raise _invalid("kind", f"One of {', '.join(Event.Kind.values)}.")
    if not isinstance(name, str) or not EVENT_NAME.match(name):
        raise _invalid("name", "At most 64 of A-Z, a-z, 0-9, _ . : and -.")
    if kind == Event.Kind.CUSTOM and not name:
        raise _invalid("name", "A custom event needs a name.")
    if not isinstance(client_event_id, str) or not CLIENT_EVENT_ID.match(client_event_id):
        raise _invalid("client_event_id", "1 to 64 printable characters without spaces.")
    amount, currency = _event_value(kind, value, currency or "")
    now = timezone.now()
    if occurred_at is not None and occurred_at > now + MAX_CLOCK_SKEW:
        raise _invalid("occurred_at", "Not in the future.")
    existing = _existing_event(decision, client_event_id)
    if existing is not None:
        return existing, False
    event = Event(
        organization_id=decision.organization_id, decision=decision, campaign_id=decision.campaign_id,
        variant_id=decision.variant_id, rule_id=decision.rule_id, subject_id=decision.subject_id,
        exposure_id=_exposure_for_event(decision), kind=kind,
        name=name, value=amount, currency=currency, client_event_id=client_event_id,
        occurred_at=occurred_at or now, received_at=now,
    )
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        existing = _existing_event(decision, client_event_id)
        if existing is None:  # not the uniqueness of the client id: a real integrity problem
            raise
        return existing, False
    if event.subject_id is not None:  # behaviour conditions of the subject's segments may change
        transaction.on_commit(lambda: send_subject_refresh(
            organization_id=event.organization_id, subject_id=event.subject_id))
    return event, True
