"""Experiments' services: create and change an experiment and its arms, start and stop it, start a new phase when
a running experiment's arms, weights, coverage or holdout change, and reweight a bandit (docs/experiments.md).

Every refusal is a ContentError naming the member (`arms[1].weight`), raised before anything is written. A change
to a running experiment that would move visitors between arms is refused with 409 `new_phase_required` unless the
caller asks for the new phase (`start_new_phase`): the admin warns, the API makes the partner say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.bandit import thompson_weights
from campaigns.content import KEY_PATTERN, ContentError, FieldReader, refuse_unknown, require_object
from campaigns.decisions import EVENT_NAME, campaign_plan_changed
from campaigns.models import Allocation, Campaign, Experiment, ExperimentArm, ExperimentPhase, Variant

MAX_ARMS = 10
MAX_CUSTOM_EVENTS = 10
WEIGHT_TOLERANCE = 1e-6
BANDIT_FLOOR = 0.01
EXPERIMENT_FIELDS = frozenset({
    "key", "name", "hypothesis", "kind", "seed", "coverage", "holdout", "custom_events", "sequential",
    "bandit_cadence_seconds", "bandit_top_two", "bandit_burn_in_per_arm", "arms",
})
ARM_FIELDS = frozenset({"variant", "weight"})
# What moves visitors between arms: changed on a running experiment, it needs a new phase.
PHASE_FIELDS = ("arms", "coverage", "holdout")


@dataclass(frozen=True)
class ArmSpec:
    """An arm as asked for: the campaign's variant and its weight (None for a bandit: equal at the start)."""

    variant: Variant
    weight: float | None


def _number(read: FieldReader, name: str, *, low: float, high: float, low_open: bool = False) -> float:
    value = read.data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContentError(read.path(name), "Give a number.")
    if value > high or value < low or (low_open and value <= low):
        bracket = "(" if low_open else "["
        raise ContentError(read.path(name), f"Give a number in {bracket}{low:g}, {high:g}].")
    return float(value)


def _arms_read(campaign: Campaign, raw: Any, kind: str) -> list[ArmSpec]:
    """The arms: 2 to MAX_ARMS distinct variants of the campaign; for an A/B test weights >= 0 summing to 1."""
    if not isinstance(raw, list):
        raise ContentError("arms", "Give a list of arms.")
    if not 2 <= len(raw) <= MAX_ARMS:
        raise ContentError("arms", f"Give 2 to {MAX_ARMS} arms.")
    variants = {v.key: v for v in Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign)}
    specs: list[ArmSpec] = []
    for index, item in enumerate(raw):
        prefix = f"arms[{index}]"
        item = require_object(item, prefix)
        refuse_unknown(item, ARM_FIELDS, prefix)
        read = FieldReader(item, prefix)
        if "variant" not in item or item["variant"] in (None, ""):
            raise ContentError(read.path("variant"), "Every arm needs a variant of the campaign.")
        key = item["variant"]
        if not isinstance(key, str) or key not in variants:
            raise ContentError(read.path("variant"), "No such variant in this campaign.")
        if any(spec.variant.key == key for spec in specs):
            raise ContentError(read.path("variant"), "Each variant may be one arm only.")
        weight = None
        if kind == Experiment.Kind.AB:
            if "weight" not in item:
                raise ContentError(read.path("weight"), "This field is required.")
            weight = _number(read, "weight", low=0.0, high=1.0)
        elif "weight" in item and item["weight"] is not None:
            raise ContentError(read.path("weight"), "A bandit sets its own weights; leave this out.")
        specs.append(ArmSpec(variants[key], weight))
    if kind == Experiment.Kind.AB:
        total = math.fsum(spec.weight or 0.0 for spec in specs)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ContentError("arms", f"The weights must sum to 1 (they sum to {total:g}).")
    return specs


def _custom_events_read(raw: Any) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_CUSTOM_EVENTS:
        raise ContentError("custom_events", f"Give a list of at most {MAX_CUSTOM_EVENTS} event names.")
    names: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not name or not EVENT_NAME.match(name):
            raise ContentError(f"custom_events[{index}]", "1 to 64 of A-Z, a-z, 0-9, _ . : and -.")
        if name in names:
            raise ContentError(f"custom_events[{index}]", "Named twice.")
        names.append(name)
    return names


def _current_arm_specs(experiment: Experiment) -> list[tuple[int, float]]:
    arms = experiment.arms.filter(retired=False).order_by("position")
    return [(arm.variant_id, arm.weight) for arm in arms]


def _apply(experiment: Experiment, data: Mapping[str, Any]) -> list[ArmSpec] | None:
    """Check `data` and put its fields on `experiment` (unsaved); the arms asked for, or None when not given."""
    read = FieldReader(data, "")
    if "key" in data:
        key = read.text("key", max_length=64, blank=False)
        if not KEY_PATTERN.match(key):
            raise ContentError("key", "Lower-case letters and digits, joined by single - or _.")
        experiment.key = key
    if "name" in data:
        experiment.name = read.text("name", max_length=200, blank=False)
    if "hypothesis" in data:
        experiment.hypothesis = read.text("hypothesis", max_length=2000)
    if "kind" in data:
        if data["kind"] not in Experiment.Kind.values:
            raise ContentError("kind", f"One of {', '.join(Experiment.Kind.values)}.")
        if experiment.status == Experiment.Status.RUNNING and data["kind"] != experiment.kind:
            raise ContentError("kind", "Stop the experiment before changing its kind.", code="experiment_running",
                               status_code=409)
        experiment.kind = data["kind"]
    if "seed" in data:
        seed = read.text("seed", max_length=64, blank=False)
        if experiment.status == Experiment.Status.RUNNING and seed != experiment.seed:
            raise ContentError("seed", "The seed cannot change while the experiment runs: it would move visitors "
                               "between arms within a phase.", code="seed_locked", status_code=409)
        experiment.seed = seed
    if "coverage" in data:
        experiment.coverage = _number(read, "coverage", low=0.0, high=1.0, low_open=True)
    if "holdout" in data:
        experiment.holdout = _number(read, "holdout", low=0.0, high=0.5)
    if "custom_events" in data:
        experiment.custom_events = _custom_events_read(data["custom_events"])
    if "sequential" in data:
        experiment.sequential = read.boolean("sequential")
    if "bandit_cadence_seconds" in data:
        experiment.bandit_cadence_seconds = read.integer("bandit_cadence_seconds", low=60, high=7 * 86400)
    if "bandit_top_two" in data:
        experiment.bandit_top_two = read.boolean("bandit_top_two")
    if "bandit_burn_in_per_arm" in data:
        experiment.bandit_burn_in_per_arm = read.integer("bandit_burn_in_per_arm", low=1, high=1_000_000)
    if "arms" in data:
        return _arms_read(experiment.campaign, data["arms"], experiment.kind)
    return None


def _phase_changes(experiment: Experiment, before: Experiment, arms: list[ArmSpec] | None) -> list[str]:
    """Which of PHASE_FIELDS `data` changes on a running experiment."""
    changed = []
    if arms is not None:
        asked = [(spec.variant.pk, spec.weight) for spec in arms]
        current = _current_arm_specs(experiment)
        if experiment.kind == Experiment.Kind.BANDIT:
            asked, current = [a for a, _ in asked], [a for a, _ in current]
        if asked != current:
            changed.append("arms")
    if experiment.coverage != before.coverage:
        changed.append("coverage")
    if experiment.holdout != before.holdout:
        changed.append("holdout")
    return changed


def _arms_write(experiment: Experiment, arms: list[ArmSpec]) -> None:
    """Make the experiment's arms these, in order: an arm of a variant left out is retired when visitors have
    been in it (earlier phases point at it) and deleted when not."""
    existing = {arm.variant_id: arm for arm in experiment.arms.all()}
    wanted = {spec.variant.pk for spec in arms}
    in_phases = {arm_id for phase in experiment.phases.all() for arm_id in phase.arm_ids}
    for variant_id, arm in existing.items():
        if variant_id in wanted:
            continue
        if arm.pk in in_phases:
            arm.retired = True
            arm.save(update_fields=["retired"])
        else:
            arm.delete()
    equal = 1.0 / len(arms)
    for position, spec in enumerate(arms):
        arm = existing.get(spec.variant.pk) or ExperimentArm(
            organization_id=experiment.organization_id, experiment=experiment, variant=spec.variant
        )
        arm.position, arm.retired = position, False  # a retired arm's position no longer counts
        arm.weight = spec.weight if spec.weight is not None else equal
        arm.save()


def _phase_open(experiment: Experiment, *, now: datetime, reason: str) -> ExperimentPhase:
    """End the open phase (if any) and open the next with the experiment's current arms, weights, coverage,
    holdout and seed; its allocation 0 is the configured weights (a bandit's: equal)."""
    ExperimentPhase.objects.filter(experiment=experiment, ended_at__isnull=True).update(ended_at=now)
    last = ExperimentPhase.objects.filter(experiment=experiment).order_by("-number").first()
    arms = list(experiment.arms.filter(retired=False).order_by("position"))
    if experiment.kind == Experiment.Kind.BANDIT:
        weights = [1.0 / len(arms)] * len(arms)
    else:
        weights = [arm.weight for arm in arms]
    phase = ExperimentPhase.objects.create(
        organization_id=experiment.organization_id, experiment=experiment, number=(last.number + 1) if last else 1,
        started_at=now, arm_ids=[arm.pk for arm in arms], weights=weights, coverage=experiment.coverage,
        holdout=experiment.holdout, seed=experiment.seed, reason=reason,
    )
    Allocation.objects.create(
        organization_id=experiment.organization_id, phase=phase, number=0, starts_at=now, weights=weights,
        note="burn_in" if experiment.kind == Experiment.Kind.BANDIT else "configured",
    )
    return phase


def _prepare(experiment: Experiment, data: Any) -> tuple[list[ArmSpec] | None, list[str]]:
    """Check `data` onto `experiment` (unsaved): the arms asked for (None: unchanged) and, for a running
    experiment, which of PHASE_FIELDS it changes."""
    data = require_object(data, "")
    refuse_unknown(data, EXPERIMENT_FIELDS | {"start_new_phase"}, "")
    before = Experiment(coverage=experiment.coverage, holdout=experiment.holdout)
    arms = _apply(experiment, data)
    if experiment.pk is None and arms is None:
        raise ContentError("arms", "This field is required.")
    if experiment.kind == Experiment.Kind.AB and arms is None and "kind" in data and experiment.pk is not None:
        arms = _arms_read(experiment.campaign, _arms_as_data(experiment), experiment.kind)
    changes = _phase_changes(experiment, before, arms) if experiment.status == Experiment.Status.RUNNING else []
    return arms, changes


def experiment_check(*, campaign: Campaign, experiment: Experiment | None, data: Any) -> list[str]:
    """Validate a create (`experiment` None) or a change without writing anything: the ContentError it would
    raise, else which of arms, coverage and holdout it would change on a running experiment (the new phase the
    admin warns about)."""
    if experiment is None:
        data = require_object(data, "")
        for name in ("key", "name"):
            if name not in data:
                raise ContentError(name, "This field is required.")
        target = Experiment(organization_id=campaign.organization_id, campaign=campaign)
    else:
        target = Experiment.objects.select_related("campaign").get(pk=experiment.pk)
    return _prepare(target, data)[1]


def _write(experiment: Experiment, data: Any, *, start_new_phase: bool) -> Experiment:
    arms, changes = _prepare(experiment, data)
    if changes and not start_new_phase:
        raise ContentError(
            changes[0], f"Changing {', '.join(changes)} of a running experiment starts a new phase: its results are "
            "kept apart from the current phase's. Ask for it with start_new_phase.", code="new_phase_required",
            status_code=409,
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            experiment.save()
            if arms is not None:
                _arms_write(experiment, arms)
            if changes:
                _phase_open(experiment, now=now, reason=f"Changed: {', '.join(changes)}")
    except IntegrityError:
        raise ContentError("key", "Another experiment of this campaign has this key.", code="conflict",
                           status_code=409) from None
    campaign_plan_changed(campaign_id=experiment.campaign_id)
    return experiment


def _arms_as_data(experiment: Experiment) -> list[dict[str, Any]]:
    arms = experiment.arms.filter(retired=False).select_related("variant").order_by("position")
    return [{"variant": arm.variant.key, "weight": arm.weight} for arm in arms]


def experiment_create(*, campaign: Campaign, data: Any) -> Experiment:
    """A draft experiment on `campaign` from the API's (or the admin's) body: key, name and arms at least."""
    data = require_object(data, "")
    for name in ("key", "name"):
        if name not in data:
            raise ContentError(name, "This field is required.")
    experiment = Experiment(organization_id=campaign.organization_id, campaign=campaign)
    return _write(experiment, data, start_new_phase=False)


def experiment_update(*, experiment: Experiment, data: Any, start_new_phase: bool = False) -> Experiment:
    """Change the members of `data`. On a running experiment a change of arms, weights, coverage or holdout needs
    `start_new_phase` (else 409 `new_phase_required`); the seed and the kind cannot change while it runs."""
    with transaction.atomic():
        current = Experiment.objects.select_for_update().select_related("campaign").get(pk=experiment.pk)
        if isinstance(data, Mapping) and "start_new_phase" in data:
            flag = data["start_new_phase"]
            if not isinstance(flag, bool):
                raise ContentError("start_new_phase", "Give true or false.")
            start_new_phase = start_new_phase or flag
        updated = _write(current, data, start_new_phase=start_new_phase)
    experiment.refresh_from_db()
    return updated


def experiment_start(*, experiment: Experiment) -> Experiment:
    """Run a draft or stopped experiment: a new phase opens. 409 while another experiment of the campaign runs."""
    with transaction.atomic():
        current = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if current.status == Experiment.Status.RUNNING:
            raise ContentError("status", "The experiment is already running.", code="experiment_running",
                               status_code=409)
        arms = list(current.arms.filter(retired=False))
        if len(arms) < 2:
            raise ContentError("arms", "An experiment needs at least two arms to start.", code="experiment_not_ready",
                               status_code=409)
        now = timezone.now()
        current.status, current.started_at, current.stopped_at = Experiment.Status.RUNNING, now, None
        try:
            with transaction.atomic():
                current.save(update_fields=["status", "started_at", "stopped_at"])
        except IntegrityError:
            raise ContentError("status", "Another experiment of this campaign is running; stop it first.",
                               code="experiment_running", status_code=409) from None
        _phase_open(current, now=now, reason="Started")
    campaign_plan_changed(campaign_id=current.campaign_id)
    experiment.refresh_from_db()
    return experiment


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Stop a running experiment: its phase ends; visitors get rules, their sticky variant or the default again."""
    with transaction.atomic():
        current = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if current.status != Experiment.Status.RUNNING:
            raise ContentError("status", "The experiment is not running.", code="experiment_not_running",
                               status_code=409)
        now = timezone.now()
        current.status, current.stopped_at = Experiment.Status.STOPPED, now
        current.save(update_fields=["status", "stopped_at"])
        ExperimentPhase.objects.filter(experiment=current, ended_at__isnull=True).update(ended_at=now)
    campaign_plan_changed(campaign_id=current.campaign_id)
    experiment.refresh_from_db()
    return experiment


# --- Bandits -----------------------------------------------------------------------------------------------------


def bandit_reweight(*, experiment: Experiment, now: datetime, rng: Any = None) -> Allocation | None:
    """A new allocation for a running bandit's open phase from Thompson sampling on its visitors and conversions
    so far (equal weights during the burn-in, no arm below BANDIT_FLOOR); None when it does not run. Idempotent
    per cadence: the caller (bandits_reweight_due) asks only when the last allocation is older than it."""
    from campaigns.results import phase_glance

    phase = ExperimentPhase.objects.filter(
        experiment=experiment, ended_at__isnull=True, experiment__status=Experiment.Status.RUNNING
    ).order_by("-number").first()
    if phase is None or experiment.kind != Experiment.Kind.BANDIT:
        return None
    counts = phase_glance(phase).counts
    arms = [counts.get(arm_id, (0, 0)) for arm_id in phase.arm_ids]
    update = thompson_weights(
        arms, top_two=experiment.bandit_top_two, floor=BANDIT_FLOOR,
        burn_in_per_arm=experiment.bandit_burn_in_per_arm, rng=rng,
    )
    with transaction.atomic():
        last = Allocation.objects.select_for_update().filter(phase=phase).order_by("-number").first()
        allocation = Allocation.objects.create(
            organization_id=experiment.organization_id, phase=phase, number=(last.number + 1) if last else 0,
            starts_at=now, weights=list(update.weights), visitors=sum(n for n, _ in arms),
            chance_to_be_best=list(update.chance_to_be_best) if update.chance_to_be_best is not None else None,
            note=update.note,
        )
    campaign_plan_changed(campaign_id=experiment.campaign_id)
    return allocation


def bandits_reweight_due(*, now: datetime) -> list[int]:
    """Reweight every running bandit whose latest allocation is older than its cadence; the ids reweighted."""
    done = []
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING, kind=Experiment.Kind.BANDIT)
    for experiment in running:
        latest = (
            Allocation.objects.filter(phase__experiment=experiment, phase__ended_at__isnull=True)
            .order_by("-number").first()
        )
        if latest is not None and latest.starts_at > now - timedelta(seconds=experiment.bandit_cadence_seconds):
            continue
        if bandit_reweight(experiment=experiment, now=now) is not None:
            done.append(experiment.pk)
    return done


def arm_keys(experiment: Experiment, arm_ids: Sequence[int]) -> list[str]:
    """The variant keys of these arms, in order."""
    arms = ExperimentArm.objects.filter(experiment=experiment, pk__in=arm_ids).select_related("variant")
    keys = {arm.pk: arm.variant.key for arm in arms}
    return [keys.get(arm_id, str(arm_id)) for arm_id in arm_ids]
