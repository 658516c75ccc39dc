"""Plain typed makers for experiment data as the decision path leaves it: an experiment with arms, a phase and its
first allocation, and per visitor an exposure, the decision that showed the arm, and a conversion event when the
visitor converted. Rows are written through the ORM, so any results computation reads them as it would in use."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.models import (
    Allocation,
    Campaign,
    Decision,
    Event,
    Experiment,
    ExperimentArm,
    ExperimentPhase,
    Exposure,
    Variant,
)

_counter = itertools.count(1)


@dataclass(frozen=True)
class SeededExperiment:
    experiment: Experiment
    phase: ExperimentPhase
    arms: list[ExperimentArm]


def seed_experiment(
    campaign: Campaign, variants: list[Variant], *, weights: list[float] | None = None, kind: str = "ab",
    status: str = "running", holdout: float = 0.0, key: str | None = None, started_at: datetime | None = None,
    name: str | None = None,
) -> SeededExperiment:
    """An experiment among `variants` (the first is the control) with phase 1 and allocation 0 at `weights`,
    written as rows (a start in the past, any status), not through the services as tests.factories.make_experiment
    does."""
    weights = weights or [1 / len(variants)] * len(variants)
    started_at = started_at or timezone.now() - timedelta(days=5)
    n = next(_counter)
    experiment = Experiment.objects.create(
        organization=campaign.organization, campaign=campaign, key=key or f"test-{n}", name=name or f"Test {n}",
        kind=kind, status=status, holdout=holdout, started_at=started_at,
    )
    arms = [
        ExperimentArm.objects.create(
            organization=campaign.organization, experiment=experiment, variant=variant, position=index,
            weight=weights[index],
        )
        for index, variant in enumerate(variants)
    ]
    phase = make_phase(experiment, arms, weights=weights, number=1, started_at=started_at, holdout=holdout)
    return SeededExperiment(experiment, phase, arms)


def make_phase(
    experiment: Experiment, arms: list[ExperimentArm], *, weights: list[float], number: int, started_at: datetime,
    holdout: float = 0.0, reason: str = "",
) -> ExperimentPhase:
    phase = ExperimentPhase.objects.create(
        organization=experiment.organization, experiment=experiment, number=number, started_at=started_at,
        arm_ids=[arm.pk for arm in arms], weights=weights, coverage=1.0, holdout=holdout, seed=experiment.seed,
        reason=reason,
    )
    Allocation.objects.create(
        organization=experiment.organization, phase=phase, number=0, starts_at=started_at, weights=weights,
    )
    return phase


def make_visitor(
    seeded: SeededExperiment, arm: ExperimentArm | None, *, converted: bool, at: datetime,
    device: str = "desktop", language: str = "en", phase: ExperimentPhase | None = None, subject=None,
) -> Exposure:
    """One visitor entering `arm` (None: the holdout) at `at`: the exposure, the decision showing the arm (the
    default variant for the holdout) and, when `converted`, a conversion a minute later."""
    phase = phase or seeded.phase
    experiment = seeded.experiment
    campaign = experiment.campaign
    visitor_id = f"visitor-{next(_counter)}"
    exposure = Exposure.objects.create(
        organization=campaign.organization, experiment=experiment, phase=phase, campaign=campaign, arm=arm,
        visitor_id=visitor_id, subject=subject, device=device, language=language, exposed_at=at,
    )
    variant = arm.variant if arm is not None else Variant.objects.get(campaign=campaign, is_default=True)
    decision = Decision.objects.create(
        organization=campaign.organization, campaign=campaign, visitor_id=visitor_id, subject=subject,
        variant=variant, experiment_arm=arm, reason="experiment" if arm is not None else "holdout",
        attributes={"device": device, "language": language}, created_at=at,
    )
    if converted:
        make_conversion(decision, at=at + timedelta(minutes=1), exposure=exposure)
    return exposure


def make_conversion(decision: Decision, *, at: datetime, exposure: Exposure | None = None) -> Event:
    """A conversion on `decision`, counted for `exposure` as event_record would count it."""
    return Event.objects.create(
        organization=decision.organization, decision=decision, campaign=decision.campaign, variant=decision.variant,
        rule=decision.rule, subject=decision.subject, exposure=exposure, kind=Event.Kind.CONVERSION, name="purchase",
        client_event_id=f"event-{next(_counter)}", occurred_at=at, received_at=at,
    )


def make_arm_visitors(
    seeded: SeededExperiment, arm: ExperimentArm | None, *, visitors: int, conversions: int, days: int = 3,
    device: str = "desktop", language: str = "en", phase: ExperimentPhase | None = None,
) -> None:
    """`visitors` visitors in `arm`, the first `conversions` of them converting, spread over the last `days` days."""
    now = timezone.now()
    for index in range(visitors):
        at = now - timedelta(days=days - 1 - index % days, hours=2)
        make_visitor(seeded, arm, converted=index < conversions, at=at, device=device, language=language,
                     phase=phase)
