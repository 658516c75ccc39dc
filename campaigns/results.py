"""An experiment's results for one phase, aggregated in the database (docs/experiments.md).

Four set-based queries, whatever the number of visitors: exposures counted by arm, device, language, allocation
and day; the exposed visitors' events folded per visitor and metric (converted or not, revenue, each custom
event), then counted by the same cells; the consenting visitors' reaction shares from their face features while
exposed, per arm; and the campaign's decisions and conversions by what decided them. Python then works on those
few cells only: statistics (campaigns.statistics), days, breakdowns.

Attribution is per visitor (intention to treat): a visitor counts in the arm they entered, and their conversions
on any later decision of the campaign within the phase count for that arm, whatever later decided their variant.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns import statistics
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
)
from consent.guards import live_consent_subjects
from consent.models import LedgerEntry
from consent.selectors import consent_funnel
from faceanalysis.aggregates import SMILE_THRESHOLD
from faceanalysis.models import CaptureSession, FrameFeatures
from segments.selectors import open_members, segment_list

CONVERSION = "conversion"
REVENUE = "revenue"
ATTENTION = "attention_share"
SMILE = "smile_share"
MAX_DAYS = 400  # a results-over-time series longer than this keeps its last MAX_DAYS days
Z_95 = statistics.normal_ppf(0.975)


@dataclass(frozen=True)
class Cell:
    """Exposed visitors in one (arm, device, language, allocation, day) cell; arm None is the holdout."""

    arm_id: int | None
    device: str
    language: str
    allocation: int
    day: date
    visitors: int


@dataclass(frozen=True)
class EventCell:
    """Exposed visitors of one (arm, device, language) who did `metric` (conversion or a custom event name), by
    the day they first did it: how many, and the sum and sum of squares of their values (revenue)."""

    arm_id: int | None
    device: str
    language: str
    metric: str
    day: date
    visitors: int
    total: float
    total_sq: float


def _quote(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _phase_end(phase: ExperimentPhase, now: datetime) -> datetime:
    return phase.ended_at or now


def exposure_cells(phase: ExperimentPhase) -> list[Cell]:
    """One GROUP BY over the phase's exposures (the (phase, arm) index)."""
    rows = (
        Exposure.objects.filter(phase=phase)
        .annotate(day=TruncDate("exposed_at"))
        .values_list("arm_id", "device", "language", "allocation_number", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [Cell(arm, device, language, allocation, _as_date(day), n) for arm, device, language, allocation, day, n
            in rows]


def _event_cells_sql(custom_count: int) -> tuple[str, tuple]:
    """The events counted for the phase's exposures folded per visitor and metric (inner), then counted by cell
    (outer). Which exposure an event counts for was settled when it was recorded (decisions._exposure_for_event)."""
    events, exposures = _quote(Event), _quote(Exposure)
    custom = ""
    if custom_count:
        custom = f" OR (e.kind = %s AND e.name IN ({', '.join(['%s'] * custom_count)}))"
    day_sql, day_params = connection.ops.datetime_cast_date_sql(
        "per.first_at", (), timezone.get_current_timezone_name()
    )
    # Table names are the models' own, quoted; every value is a parameter.
    inner = (
        "SELECT x.arm_id, x.device, x.language, CASE WHEN e.kind = %s THEN '' ELSE e.name END AS metric, "  # noqa: S608
        "MIN(e.received_at) AS first_at, SUM(COALESCE(e.value, 0)) AS total "
        f"FROM {events} e JOIN {exposures} x ON x.id = e.exposure_id "
        "WHERE e.campaign_id = %s AND x.phase_id = %s AND (e.kind = %s" + custom + ") "
        "GROUP BY e.exposure_id, x.arm_id, x.device, x.language, CASE WHEN e.kind = %s THEN '' ELSE e.name END"
    )
    outer = (
        f"SELECT per.arm_id, per.device, per.language, per.metric, {day_sql}, COUNT(*), "  # noqa: S608
        f"SUM(per.total), SUM(per.total * per.total) FROM ({inner}) per "
        "GROUP BY 1, 2, 3, 4, 5"  # by position: the day expression may carry parameters
    )
    return outer, tuple(day_params)


def event_cells(phase: ExperimentPhase, *, campaign_id: int, custom_events: list[str]) -> list[EventCell]:
    """Conversions (metric "") and the named custom events of the phase's exposed visitors, folded per visitor."""
    sql, day_params = _event_cells_sql(len(custom_events))
    kind = Event.Kind.CONVERSION.value
    params: list[Any] = [*day_params, kind, campaign_id, phase.pk, kind]
    if custom_events:
        params += [Event.Kind.CUSTOM.value, *custom_events]
    params += [kind]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        EventCell(arm, device, language, metric, _as_date(day), n, float(total or 0), float(total_sq or 0))
        for arm, device, language, metric, day, n, total, total_sq in rows
    ]


@dataclass(frozen=True)
class ReactionSums:
    """Per arm, over consenting visitors with counting frames while exposed: n, sum and sum of squares of their
    attention share and of their smile share (each visitor's own share of frames)."""

    attention: tuple[int, float, float]
    smile: tuple[int, float, float]


def reaction_sums(phase: ExperimentPhase, *, campaign: Campaign, end: datetime) -> dict[int | None, ReactionSums]:
    """Each exposed subject's shares over their counting frames analysed in this campaign's capture sessions from
    their exposure to the phase's end, then summed per arm. Only subjects whose consent to what the campaign's
    camera needs is live now count (the guard's bulk answer, joined): a withdrawal takes them out at once, before
    its purge has deleted their features."""
    exposures, features, sessions = _quote(Exposure), _quote(FrameFeatures), _quote(CaptureSession)
    consenting = live_consent_subjects(organization_id=campaign.organization_id, purposes=campaign.capture_purposes)
    consenting_sql, consenting_params = consenting.values("pk").query.sql_with_params()
    # Table names are the models' own, quoted; every value is a parameter (the subquery's too).
    sql = (
        "SELECT per.arm_id, COUNT(per.attention), SUM(per.attention), SUM(per.attention * per.attention), "  # noqa: S608
        "COUNT(per.smile), SUM(per.smile), SUM(per.smile * per.smile) FROM ("
        "SELECT x.id, x.arm_id, "
        "AVG(CASE WHEN f.looking_at_screen IS NULL THEN NULL WHEN f.looking_at_screen = %s THEN 1.0 ELSE 0.0 END) "
        "AS attention, "
        "AVG(CASE WHEN f.smile IS NULL THEN NULL WHEN f.smile >= %s THEN 1.0 ELSE 0.0 END) AS smile "
        f"FROM {exposures} x JOIN {features} f "
        "ON f.subject_id = x.subject_id AND f.organization_id = x.organization_id "
        f"JOIN {sessions} s ON s.id = f.session_id AND s.campaign_id = %s "
        "WHERE x.phase_id = %s AND x.subject_id IS NOT NULL AND f.face_count > 0 AND f.quality_ok = %s "
        f"AND f.analyzed_at >= x.exposed_at AND f.analyzed_at < %s AND x.subject_id IN ({consenting_sql}) "
        "GROUP BY x.id, x.arm_id) per GROUP BY per.arm_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, SMILE_THRESHOLD, campaign.pk, phase.pk, True, end, *consenting_params])
        rows = cursor.fetchall()
    return {
        arm: ReactionSums((n_a, float(s_a or 0), float(q_a or 0)), (n_s, float(s_s or 0), float(q_s or 0)))
        for arm, n_a, s_a, q_a, n_s, s_s, q_s in rows
    }


@dataclass(frozen=True)
class PhaseGlance:
    """A phase at a glance: (visitors, converters) per arm, and its sample-ratio check."""

    counts: dict[int, tuple[int, int]]
    srm: dict[str, Any]


def phase_glance(phase: ExperimentPhase) -> PhaseGlance:
    """Visitors and converters per arm and the sample-ratio check of one phase, from one pass over its exposures
    and one over its conversions: for a bandit's reweighting and the admin's home."""
    cells = exposure_cells(phase)
    visitors: dict[int, int] = defaultdict(int)
    for cell in cells:
        if cell.arm_id is not None:
            visitors[cell.arm_id] += cell.visitors
    converters: dict[int, int] = defaultdict(int)
    for cell in event_cells(phase, campaign_id=phase.experiment.campaign_id, custom_events=[]):
        if cell.arm_id is not None and cell.metric == "":
            converters[cell.arm_id] += cell.visitors
    allocations = dict(Allocation.objects.filter(phase=phase).values_list("number", "weights"))
    srm = _srm(list(phase.arm_ids), ((cell.arm_id, cell.allocation, cell.visitors) for cell in cells), allocations,
               phase.weights)
    return PhaseGlance({arm_id: (n, converters.get(arm_id, 0)) for arm_id, n in visitors.items()}, srm)


# --- Statistics per metric ---------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [_finite(v) for v in value] if all(_finite(v) is not None for v in value) else None
    return value


def _mean_interval(n: int, total: float, total_sq: float) -> tuple[float | None, float | None, list | None]:
    """Mean, sample sd and a normal 95 % interval of a per-visitor metric from its sums (zeros included)."""
    moments = statistics.mean_and_variance(n, total, total_sq)
    if moments is None:
        return None, None, None
    mean, variance = moments
    sd = math.sqrt(max(variance, 0.0))
    half = Z_95 * sd / math.sqrt(n)
    return mean, sd, [mean - half, mean + half]


COMPARISON_FIELDS = ("uplift", "uplift_interval", "p_value", "chance_to_win", "expected_loss")


def _proportion_metric(key: str, label: str, arms: list[dict], counts: list[tuple[int, int]], *, sequential: bool,
                       reaction: bool = False) -> dict[str, Any]:
    rows = []
    for index, (arm, (n, successes)) in enumerate(zip(arms, counts, strict=True)):
        row: dict[str, Any] = {
            "key": arm["key"], "n": n, "count": successes, "value": successes / n if n else None,
            "interval": _finite(statistics.wilson_interval(successes, n)),
        }
        if index == 0:
            row.update(dict.fromkeys(COMPARISON_FIELDS))
        else:
            control_n, control_successes = counts[0]
            compared = statistics.compare_proportions(
                (control_successes, control_n), (successes, n), sequential=sequential
            )
            row.update({field: _finite(compared.get(field)) for field in COMPARISON_FIELDS})
        rows.append(row)
    return {"key": key, "label": label, "kind": "proportion", "reaction": reaction, "arms": rows}


def _mean_metric(key: str, label: str, arms: list[dict], sums: list[tuple[int, float, float]], *, sequential: bool,
                 reaction: bool = False) -> dict[str, Any]:
    rows = []
    for index, (arm, (n, total, total_sq)) in enumerate(zip(arms, sums, strict=True)):
        mean, sd, interval = _mean_interval(n, total, total_sq)
        row: dict[str, Any] = {"key": arm["key"], "n": n, "count": None, "value": mean, "sd": sd,
                               "interval": _finite(interval)}
        if index == 0:
            row.update(dict.fromkeys(COMPARISON_FIELDS))
        else:
            compared = statistics.compare_means(sums[0], (n, total, total_sq), sequential=sequential)
            row.update({field: _finite(compared.get(field)) for field in COMPARISON_FIELDS})
        rows.append(row)
    return {"key": key, "label": label, "kind": "mean", "reaction": reaction, "arms": rows}


def _holm(metrics: list[dict[str, Any]]) -> None:
    """Holm–Bonferroni across every treatment arm of every metric: `p_adjusted` and `significant`."""
    cells = [row for metric in metrics for row in metric["arms"]]
    adjusted = statistics.holm_adjust([row["p_value"] for row in cells])
    for row, p in zip(cells, adjusted, strict=True):
        row["p_adjusted"] = _finite(p)
        row["significant"] = p is not None and p < statistics.ALPHA


# --- Results -----------------------------------------------------------------------------------------------------


def _srm(arms_in_order: list[int], counts: Iterable[tuple[int | None, int, int]],
         allocations: dict[int, list[float]], phase_weights: list[float]) -> dict[str, Any]:
    """Observed visitors per arm, from (arm, allocation number, visitors) counts, against those the weights in
    force when each entered would give: for a bandit, each allocation period's visitors times that period's
    weights, summed. The holdout (arm None) is left out: it is drawn before the arms split."""
    index = {arm_id: i for i, arm_id in enumerate(arms_in_order)}
    observed = [0] * len(arms_in_order)
    per_allocation: dict[int, int] = defaultdict(int)
    for arm_id, allocation, visitors in counts:
        if arm_id in index:
            observed[index[arm_id]] += visitors
            per_allocation[allocation] += visitors
    expected = [0.0] * len(arms_in_order)
    for number, visitors in per_allocation.items():
        weights = allocations.get(number, phase_weights)
        total = math.fsum(weights) or 1.0
        for i, weight in enumerate(weights[: len(expected)]):
            expected[i] += visitors * weight / total
    p_value = statistics.srm_p_value(observed, expected) if sum(observed) else None
    return {
        "p_value": _finite(p_value), "flagged": p_value is not None and p_value < statistics.SRM_THRESHOLD,
        "observed": observed, "expected": [round(e, 3) for e in expected],
    }


def _days(start: date, end: date) -> list[date]:
    start = max(start, end - timedelta(days=MAX_DAYS - 1))
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _timeseries(arms: list[dict], ids: list[int], cells: list[Cell], conversions: list[EventCell],
                start: date, end: date) -> dict[str, Any]:
    days = _days(start, end)
    position = {day: i for i, day in enumerate(days)}
    series: dict[str, Any] = {}
    for arm, arm_id in zip(arms, ids, strict=True):
        new = [0] * len(days)
        converted = [0] * len(days)
        for cell in cells:
            if cell.arm_id == arm_id:
                new[position.get(cell.day, 0)] += cell.visitors
        for cell in conversions:
            if cell.arm_id == arm_id:
                converted[position.get(cell.day, 0)] += cell.visitors
        cumulative_visitors, cumulative_conversions, rate, lower, upper = [], [], [], [], []
        seen = won = 0
        for n, c in zip(new, converted, strict=True):
            seen, won = seen + n, won + c
            cumulative_visitors.append(seen)
            cumulative_conversions.append(won)
            interval = statistics.wilson_interval(won, seen)
            rate.append(won / seen if seen else None)
            lower.append(interval[0] if interval else None)
            upper.append(interval[1] if interval else None)
        series[arm["key"]] = {
            "visitors": new, "cumulative_visitors": cumulative_visitors,
            "cumulative_conversions": cumulative_conversions, "rate": rate, "lower": lower, "upper": upper,
        }
    return {"days": [day.isoformat() for day in days], "arms": series}


def _breakdown(attribute: str, arms: list[dict], ids: list[int], cells: list[Cell],
               conversions: list[EventCell]) -> list[dict[str, Any]]:
    visitors: dict[tuple[str, int | None], int] = defaultdict(int)
    converted: dict[tuple[str, int | None], int] = defaultdict(int)
    for cell in cells:
        visitors[(getattr(cell, attribute), cell.arm_id)] += cell.visitors
    for cell in conversions:
        converted[(getattr(cell, attribute), cell.arm_id)] += cell.visitors
    values = sorted({value for value, _ in visitors}, key=lambda v: (-sum(
        n for (value, _), n in visitors.items() if value == v), v))
    table = []
    for value in values:
        rows = []
        for arm, arm_id in zip(arms, ids, strict=True):
            n, c = visitors.get((value, arm_id), 0), converted.get((value, arm_id), 0)
            rows.append({"key": arm["key"], "visitors": n, "conversions": c, "rate": c / n if n else None,
                         "interval": _finite(statistics.wilson_interval(c, n))})
        table.append({"value": value or "unknown", "arms": rows})
    return table


MAX_SEGMENT_BREAKDOWNS = 20


def _segment_breakdown(phase: ExperimentPhase, arms: list[dict], ids: list[int], *,
                       campaign: Campaign) -> list[dict[str, Any]]:
    """Per segment of the organization (its members now, with the consent a face-based one needs): the phase's
    exposed visitors who are members and how many converted, per arm. Only visitors known as a subject (they
    consented) can be members; anonymous visitors are in no row. Two GROUP BYs per segment, at most
    MAX_SEGMENT_BREAKDOWNS segments, those with the most members first."""
    table = []
    segments = segment_list(organization_id=campaign.organization_id).order_by("-size", "key")
    for segment in segments[:MAX_SEGMENT_BREAKDOWNS]:
        members = open_members(organization_id=campaign.organization_id, keys=[segment.key])
        exposed = Exposure.objects.filter(phase=phase, subject_id__in=members)
        visitors = dict(exposed.values_list("arm_id").annotate(n=Count("id")).order_by())
        if not visitors:
            continue
        converting = Event.objects.filter(exposure_id=OuterRef("pk"), campaign_id=campaign.pk,
                                          kind=Event.Kind.CONVERSION)
        converted = dict(exposed.filter(Exists(converting)).values_list("arm_id").annotate(n=Count("id")).order_by())
        rows = []
        for arm, arm_id in zip(arms, ids, strict=True):
            n, c = visitors.get(arm_id, 0), converted.get(arm_id, 0)
            rows.append({"key": arm["key"], "visitors": n, "conversions": c, "rate": c / n if n else None,
                         "interval": _finite(statistics.wilson_interval(c, n))})
        table.append({"value": segment.name, "segment": segment.key, "arms": rows})
    return table


def _rule_breakdown(campaign: Campaign, *, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
    """The campaign's decisions, and the conversions on them, by what decided them (rule, arm, holdout, sticky,
    default) and the variant shown. Grouped by ids only (no join over the log); names are looked up after."""
    window = Q()
    if start is not None:
        window &= Q(created_at__gte=start)
    if end is not None:
        window &= Q(created_at__lt=end)
    group = ("reason", "rule_id", "experiment_arm_id", "variant_id")
    decisions = (
        Decision.objects.filter(window, organization_id=campaign.organization_id, campaign=campaign)
        .values_list(*group).annotate(n=Count("id")).order_by()
    )
    event_window = Q()
    if start is not None:
        event_window &= Q(decision__created_at__gte=start)
    if end is not None:
        event_window &= Q(decision__created_at__lt=end)
    conversions = (
        Event.objects.filter(event_window, organization_id=campaign.organization_id, campaign=campaign,
                             kind=Event.Kind.CONVERSION)
        .values_list("decision__reason", "rule_id", "decision__experiment_arm_id", "variant_id")
        .annotate(n=Count("id")).order_by()
    )
    table: dict[tuple, dict[str, int]] = defaultdict(lambda: {"decisions": 0, "conversions": 0})
    for source, counter in ((decisions, "decisions"), (conversions, "conversions")):
        for reason, rule_id, arm_id, variant_id, n in source:
            table[(reason, rule_id, arm_id, variant_id)][counter] += n
    variants = dict(campaign.variants.values_list("pk", "key"))
    rules = dict(Rule.objects.filter(campaign=campaign).values_list("pk", "name"))
    arms = dict(ExperimentArm.objects.filter(experiment__campaign=campaign).values_list("pk", "variant__key"))
    labels = {
        Decision.Reason.HOLDOUT: "Holdout", Decision.Reason.STICKY: "Sticky", Decision.Reason.DEFAULT: "Default",
    }
    rows = []
    for (reason, rule_id, arm_id, variant_id), counts in table.items():
        if reason == Decision.Reason.RULE:
            label = rules.get(rule_id) or f"Rule {rule_id} (deleted)"
        elif reason == Decision.Reason.EXPERIMENT:
            label = f"Experiment: {arms.get(arm_id, arm_id)}"
        else:
            label = labels.get(reason, str(reason))
        rows.append({
            "label": label, "reason": reason, "rule": rule_id, "variant": variants.get(variant_id), **counts,
            "conversion_per_decision": counts["conversions"] / counts["decisions"] if counts["decisions"] else None,
        })
    return sorted(rows, key=lambda row: (-row["decisions"], row["label"]))


def _funnel(campaign: Campaign) -> dict[str, int]:
    rows = consent_funnel(organization=campaign.organization, context_ref=campaign.context_ref)
    events = (LedgerEntry.Event.SHOWN, LedgerEntry.Event.GRANTED, LedgerEntry.Event.REFUSED,
              LedgerEntry.Event.WITHDRAWN)
    return {str(event): sum(getattr(row, str(event)) for row in rows) for event in events}


def campaign_overview(campaign: Campaign) -> dict[str, Any]:
    """What the report shows of a campaign with or without an experiment: its consent funnel and its decisions
    and conversions by what decided them (all time)."""
    return {
        "campaign": {"id": campaign.public_id, "name": campaign.name, "status": campaign.status},
        "funnel": _funnel(campaign),
        "breakdowns": {"rule": _rule_breakdown(campaign, start=None, end=None)},
    }


def _phase_of(experiment: Experiment, phase_number: int | None) -> ExperimentPhase | None:
    phases = ExperimentPhase.objects.filter(experiment=experiment)
    if phase_number is not None:
        return phases.filter(number=phase_number).first()
    return phases.order_by("-number").first()


def experiment_results(experiment: Experiment, *, phase_number: int | None = None,
                       now: datetime | None = None) -> dict[str, Any] | None:
    """The results of one phase (the latest by default) in the shape docs/experiments.md documents; None when the
    experiment has no such phase (it never ran, or `phase_number` does not exist)."""
    now = now or timezone.now()
    phase = _phase_of(experiment, phase_number)
    if phase is None:
        return None
    campaign = experiment.campaign
    end = _phase_end(phase, now)
    arm_rows = {arm.pk: arm for arm in ExperimentArm.objects.filter(experiment=experiment).select_related("variant")}
    ids = [arm_id for arm_id in phase.arm_ids if arm_id in arm_rows]
    allocations = list(Allocation.objects.filter(phase=phase).order_by("number"))
    current = allocations[-1].weights if allocations else phase.weights
    arms = [
        {"key": arm_rows[arm_id].variant.key, "name": arm_rows[arm_id].variant.name, "control": i == 0,
         "weight": current[i] if i < len(current) else None}
        for i, arm_id in enumerate(ids)
    ]

    cells = exposure_cells(phase)
    events = event_cells(phase, campaign_id=campaign.pk, custom_events=list(experiment.custom_events))
    reactions = reaction_sums(phase, campaign=campaign, end=end)
    conversions = [cell for cell in events if cell.metric == ""]

    visitors = {arm_id: 0 for arm_id in [*ids, None]}
    for cell in cells:
        visitors[cell.arm_id] = visitors.get(cell.arm_id, 0) + cell.visitors
    by_metric: dict[str, dict[int | None, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0, 0.0]))
    for cell in events:
        sums = by_metric[cell.metric][cell.arm_id]
        sums[0] += cell.visitors
        sums[1] += cell.total
        sums[2] += cell.total_sq

    def successes(metric: str) -> list[tuple[int, int]]:
        return [(visitors[arm_id], int(by_metric[metric][arm_id][0]) if arm_id in by_metric[metric] else 0)
                for arm_id in ids]

    sequential = experiment.sequential
    metrics = [_proportion_metric(CONVERSION, "Conversion", arms, successes(""), sequential=sequential)]
    revenue = [(visitors[arm_id], by_metric[""][arm_id][1] if arm_id in by_metric[""] else 0.0,
                by_metric[""][arm_id][2] if arm_id in by_metric[""] else 0.0) for arm_id in ids]
    metrics.append(_mean_metric(REVENUE, "Revenue per visitor", arms, revenue, sequential=sequential))
    for name in experiment.custom_events:
        metrics.append(_proportion_metric(f"event:{name}", f"Did {name}", arms, successes(name),
                                          sequential=sequential))
    empty = ReactionSums((0, 0.0, 0.0), (0, 0.0, 0.0))
    metrics.append(_mean_metric(ATTENTION, "Attention share while exposed", arms,
                                [reactions.get(arm_id, empty).attention for arm_id in ids],
                                sequential=sequential, reaction=True))
    metrics.append(_mean_metric(SMILE, "Smile share while exposed", arms,
                                [reactions.get(arm_id, empty).smile for arm_id in ids],
                                sequential=sequential, reaction=True))
    _holm(metrics)

    conversion_rows = metrics[0]["arms"]
    ranked = [row for row in conversion_rows if row["value"] is not None]
    leader = max(ranked, key=lambda row: row["value"])["key"] if ranked and any(r["count"] for r in ranked) else None
    holdout = None
    if phase.holdout > 0 or visitors.get(None):
        n = visitors.get(None, 0)
        c = int(by_metric[""][None][0]) if None in by_metric[""] else 0
        holdout = {"visitors": n, "conversions": c, "rate": c / n if n else None,
                   "interval": _finite(statistics.wilson_interval(c, n))}
    keys = {arm_id: arm["key"] for arm_id, arm in zip(ids, arms, strict=True)}
    return {
        "campaign": {"id": campaign.public_id, "name": campaign.name, "status": campaign.status},
        "experiment": {
            "key": experiment.key, "name": experiment.name, "kind": experiment.kind, "status": experiment.status,
            "sequential": sequential, "alpha": statistics.ALPHA, "custom_events": list(experiment.custom_events),
        },
        "phase": {
            "number": phase.number, "started_at": phase.started_at.isoformat(),
            "ended_at": phase.ended_at.isoformat() if phase.ended_at else None, "coverage": phase.coverage,
            "holdout": phase.holdout, "seed": phase.seed, "reason": phase.reason,
        },
        "phases": [
            {"number": p.number, "started_at": p.started_at.isoformat(),
             "ended_at": p.ended_at.isoformat() if p.ended_at else None, "reason": p.reason}
            for p in ExperimentPhase.objects.filter(experiment=experiment).order_by("number")
        ],
        "computed_at": now.isoformat(),
        "arms": arms,
        "visitors": sum(visitors[arm_id] for arm_id in ids),
        "holdout": holdout,
        "srm": _srm(ids, ((cell.arm_id, cell.allocation, cell.visitors) for cell in cells),
                    {a.number: a.weights for a in allocations}, phase.weights),
        "metrics": metrics,
        "leader": leader,
        "timeseries": _timeseries(arms, ids, cells, conversions, phase.started_at.date(), end.date()),
        "allocations": [
            {"number": a.number, "starts_at": a.starts_at.isoformat(), "note": a.note, "visitors": a.visitors,
             "weights": {keys[arm_id]: w for arm_id, w in zip(ids, a.weights, strict=False)},
             "chance_to_be_best": ({keys[arm_id]: p for arm_id, p in zip(ids, a.chance_to_be_best, strict=False)}
                                   if a.chance_to_be_best else None)}
            for a in allocations
        ],
        "breakdowns": {
            "device": _breakdown("device", arms, ids, cells, conversions),
            "language": _breakdown("language", arms, ids, cells, conversions),
            "rule": _rule_breakdown(campaign, start=phase.started_at, end=phase.ended_at),
            "segment": _segment_breakdown(phase, arms, ids, campaign=campaign),
        },
        "funnel": _funnel(campaign),
    }
