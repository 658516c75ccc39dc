"""An experiment's results, aggregated in SQL, against a plain-Python count of the same rows: visitors per arm,
converters and revenue per visitor (intention to treat: conversions on any later decision count for the arm
entered; those before the exposure or after the phase do not), custom events, days, breakdowns, reaction shares
of consenting visitors while exposed, the sample-ratio check with a bandit's changing weights, phases kept apart,
and the results endpoint (JSON and CSV, foreign campaigns 404). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import statistics
from campaigns.decisions import decision_make, event_record
from campaigns.experiments import experiment_update
from campaigns.models import Allocation, Campaign, Decision, Event, ExperimentPhase, Exposure
from campaigns.request_context import RequestAttributes
from campaigns.results import experiment_results
from campaigns.services import capture_session_open
from faceanalysis.models import FrameFeatures
from tests.conftest import api_client
from tests.factories import (
    make_api_key,
    make_campaign,
    make_experiment,
    make_grant,
    make_notice,
    make_subject,
    make_variant,
)

pytestmark = pytest.mark.django_db

DEVICES = ("desktop", "mobile", "tablet")
LANGUAGES = ("en", "de", "")


@pytest.fixture
def campaign(org_a) -> Campaign:
    campaign = make_campaign(org_a)
    campaign.notice = make_notice(org_a)
    for key in ("control", "bold", "calm"):
        make_variant(campaign, key=key, default=key == "control")
    return campaign


def _decide(campaign, visitor: str, rng: random.Random, subject=None) -> Decision:
    attributes = RequestAttributes(device=rng.choice(DEVICES), language=rng.choice(LANGUAGES), country="")
    return decision_make(campaign=campaign, visitor_id=visitor, subject=subject, attributes=attributes,
                         channel="api")


def _event(decision: Decision, kind: str, *, name: str = "", value=None, n: int = 0) -> None:
    event_record(organization=decision.campaign.organization, decision_public_id=decision.public_id,
                 visitor_id=None, kind=kind, name=name, value=value, currency="EUR" if value is not None else "",
                 client_event_id=f"{kind}-{name}-{decision.pk}-{n}", occurred_at=None)


def _expected(phase: ExperimentPhase, custom: str) -> dict:
    """The same numbers by walking the rows in Python."""
    exposures = list(Exposure.objects.filter(phase=phase))
    by_visitor = {x.visitor_id: x for x in exposures}
    visitors: dict = defaultdict(int)
    for x in exposures:
        visitors[x.arm_id] += 1
    converted: dict = defaultdict(set)
    revenue: dict = defaultdict(lambda: defaultdict(Decimal))
    did_custom: dict = defaultdict(set)
    end = phase.ended_at or timezone.now() + timedelta(days=1)
    for event in Event.objects.filter(campaign=phase.experiment.campaign).select_related("decision"):
        x = by_visitor.get(event.decision.visitor_id)
        if x is None or not x.exposed_at <= event.decision.created_at or event.received_at >= end:
            continue
        if event.kind == "conversion":
            converted[x.arm_id].add(x.visitor_id)
            revenue[x.arm_id][x.visitor_id] += event.value or 0
        elif event.kind == "custom" and event.name == custom:
            did_custom[x.arm_id].add(x.visitor_id)
    return {"visitors": visitors, "converted": converted, "revenue": revenue, "custom": did_custom,
            "exposures": exposures}


def test_results_count_what_the_rows_say(campaign) -> None:
    rng = random.Random(7)
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.3), ("calm", 0.2)],
                                 custom_events=["signup"])
    early = _decide(campaign, "visitor-early-000000000", rng)  # exposed, then converts ...
    phase = ExperimentPhase.objects.get(experiment=experiment)
    for i in range(240):
        visitor = f"visitor-{i:016d}"
        first = _decide(campaign, visitor, rng)
        later = _decide(campaign, visitor, rng) if rng.random() < 0.5 else first
        if rng.random() < 0.3:
            _event(later, "conversion", value=Decimal(rng.choice(["9.90", "20", "0.5"])))
            if rng.random() < 0.3:
                _event(first, "conversion", value=Decimal("5"), n=1)  # a second purchase adds up
        if rng.random() < 0.2:
            _event(first, "custom", name="signup")
        if rng.random() < 0.1:
            _event(first, "click")
    _event(early, "conversion", value=Decimal("3"))

    results = experiment_results(experiment)
    expected = _expected(phase, "signup")
    ids = phase.arm_ids
    metrics = {m["key"]: m for m in results["metrics"]}
    conversion, revenue, signup = metrics["conversion"], metrics["revenue"], metrics["event:signup"]
    for index, arm_id in enumerate(ids):
        n = expected["visitors"][arm_id]
        assert conversion["arms"][index]["n"] == n and n > 0
        assert conversion["arms"][index]["count"] == len(expected["converted"][arm_id])
        assert signup["arms"][index]["count"] == len(expected["custom"][arm_id])
        total = sum(expected["revenue"][arm_id].values())
        assert revenue["arms"][index]["value"] == pytest.approx(float(total) / n)
        values = [float(v) for v in expected["revenue"][arm_id].values()] + [0.0] * (n - len(
            expected["revenue"][arm_id]))
        mean = sum(values) / n
        sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
        assert revenue["arms"][index]["sd"] == pytest.approx(sd)
    assert results["visitors"] == sum(expected["visitors"].values()) == 241
    assert [arm["key"] for arm in results["arms"]] == ["control", "bold", "calm"]
    assert results["arms"][0]["control"] and not results["arms"][1]["control"]
    # days: the last cumulative values are the totals
    for index, arm in enumerate(results["arms"]):
        series = results["timeseries"]["arms"][arm["key"]]
        assert series["cumulative_visitors"][-1] == conversion["arms"][index]["n"]
        assert series["cumulative_conversions"][-1] == conversion["arms"][index]["count"]
    # breakdowns add up to the totals, and by device as the exposures say
    for attribute in ("device", "language"):
        rows = results["breakdowns"][attribute]
        for index in range(len(results["arms"])):
            assert sum(row["arms"][index]["visitors"] for row in rows) == conversion["arms"][index]["n"]
            assert sum(row["arms"][index]["conversions"] for row in rows) == conversion["arms"][index]["count"]
    mobile = next(row for row in results["breakdowns"]["device"] if row["value"] == "mobile")
    assert mobile["arms"][0]["visitors"] == sum(
        1 for x in expected["exposures"] if x.arm_id == ids[0] and x.device == "mobile")
    rules = results["breakdowns"]["rule"]
    assert sum(row["decisions"] for row in rules) == Decision.objects.filter(campaign=campaign).count()
    assert {row["label"] for row in rules} <= {"Experiment: control", "Experiment: bold", "Experiment: calm"}


def test_a_conversion_before_the_exposure_or_outside_the_phase_does_not_count(campaign) -> None:
    rng = random.Random(1)
    before = _decide(campaign, "visitor-before-00000000", rng)  # no experiment yet: the default
    _event(before, "conversion")
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)])
    exposed = _decide(campaign, "visitor-before-00000000", rng)
    assert exposed.reason == "experiment"
    results = experiment_results(experiment)
    assert sum(arm["count"] for arm in results["metrics"][0]["arms"]) == 0
    experiment_update(experiment=experiment, data={"coverage": 0.5}, start_new_phase=True)
    _event(exposed, "conversion", n=2)  # on a phase-1 decision, but received after phase 1 ended: no phase's
    phase_one = experiment_results(experiment, phase_number=1)
    assert sum(arm["n"] for arm in phase_one["metrics"][0]["arms"]) == 1
    assert sum(arm["count"] for arm in phase_one["metrics"][0]["arms"]) == 0
    _event(_decide(campaign, "visitor-before-00000000", rng), "conversion", n=3)  # exposed in phase 2 now: counts
    phase_two = experiment_results(experiment)
    assert phase_two["phase"]["number"] == 2 and [p["number"] for p in phase_two["phases"]] == [1, 2]
    entered = phase_two["visitors"]
    assert sum(arm["count"] for arm in phase_two["metrics"][0]["arms"]) == entered  # 1 if the hash let them in
    assert experiment_results(experiment, phase_number=9) is None


def test_reaction_metrics_count_consenting_visitors_frames_while_exposed(campaign, org_a) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], seed="react")
    rng = random.Random(3)
    expected: dict = defaultdict(list)
    for i in range(12):
        subject = make_subject(org_a)
        grant = make_grant(subject, campaign.notice)
        decision = _decide(campaign, f"visitor-face-{i:011d}", rng, subject=subject)
        session, _ = capture_session_open(organization=org_a, subject=subject, campaign=campaign,
                                          source="browser_stream")
        looking = [rng.random() < 0.7 for _ in range(6)]
        smiles = [rng.random() for _ in range(6)]
        exposed_at = decision.created_at
        for j, (look, smile) in enumerate(zip(looking, smiles, strict=True)):
            _frame(session, grant, at=exposed_at + timedelta(seconds=j + 1), looking=look, smile=smile)
        _frame(session, grant, at=exposed_at - timedelta(seconds=5), looking=False, smile=0.0)  # before: no
        _frame(session, grant, at=exposed_at + timedelta(seconds=9), looking=True, smile=0.9, quality_ok=False)
        expected[decision.experiment_arm_id].append(
            (sum(looking) / 6, sum(s >= 0.5 for s in smiles) / 6)
        )
    for i in range(5):  # visitors without consent: counted in the arm, not in the reaction metrics
        _decide(campaign, f"visitor-anon-{i:011d}", rng)
    results = experiment_results(experiment, now=timezone.now() + timedelta(minutes=1))  # the frames are "later"
    metrics = {m["key"]: m for m in results["metrics"]}
    phase = ExperimentPhase.objects.get(experiment=experiment)
    for index, arm_id in enumerate(phase.arm_ids):
        shares = expected[arm_id]
        for key, position in (("attention_share", 0), ("smile_share", 1)):
            row = metrics[key]["arms"][index]
            assert metrics[key]["reaction"] is True
            assert row["n"] == len(shares)
            if shares:
                assert row["value"] == pytest.approx(sum(s[position] for s in shares) / len(shares))
    assert sum(row["n"] for row in metrics["conversion"]["arms"]) == 17

    # A consent that ends counts no more, before any purge has deleted the features (here: none runs).
    from consent.models import Grant

    gone = Exposure.objects.filter(phase=phase, subject__isnull=False).first()
    Grant.objects.filter(subject_id=gone.subject_id).update(ended_at=timezone.now())
    assert FrameFeatures.objects.filter(subject_id=gone.subject_id).exists()
    after = experiment_results(experiment, now=timezone.now() + timedelta(minutes=1))
    index = phase.arm_ids.index(gone.arm_id)
    before_n = metrics["attention_share"]["arms"][index]["n"]
    assert {m["key"]: m for m in after["metrics"]}["attention_share"]["arms"][index]["n"] == before_n - 1


def _frame(session, grant, *, at, looking: bool, smile: float, quality_ok: bool = True) -> None:
    from faceanalysis.models import Frame

    frame = Frame.objects.create(
        organization_id=session.organization_id, session=session, subject_id=session.subject_id, grant=grant,
        content_type="image/jpeg", byte_size=1000, width=64, height=64, queue="analysis",
        status=Frame.Status.ANALYZED, received_at=at, finished_at=at,
    )
    FrameFeatures.objects.create(
        organization_id=session.organization_id, frame=frame, session=session, subject_id=session.subject_id,
        grant=grant, face_count=1, quality_ok=quality_ok, quality_reasons=[], attention_score=0.5,
        looking_at_screen=looking, smile=smile, received_at=at, analyzed_at=at, latency_ms=10.0,
    )


_visitors = itertools.count()


def _exposures(experiment, phase, arm_counts: list[int], allocation: int) -> None:
    arms = phase.arm_ids
    rows = []
    for arm_id, count in zip(arms, arm_counts, strict=True):
        for _ in range(count):
            rows.append(Exposure(organization_id=experiment.organization_id, experiment=experiment, phase=phase,
                                 campaign_id=experiment.campaign_id, arm_id=arm_id, allocation_number=allocation,
                                 visitor_id=f"v-{next(_visitors):08d}"))
    Exposure.objects.bulk_create(rows)


def test_a_sample_ratio_mismatch_is_flagged(campaign) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)])
    phase = ExperimentPhase.objects.get(experiment=experiment)
    _exposures(experiment, phase, [1000, 1010], 0)
    fine = experiment_results(experiment)["srm"]
    assert not fine["flagged"] and fine["observed"] == [1000, 1010] and fine["expected"] == [1005.0, 1005.0]
    _exposures(experiment, phase, [300, 0], 0)
    bad = experiment_results(experiment)["srm"]
    assert bad["flagged"] and bad["p_value"] < statistics.SRM_THRESHOLD


def test_a_bandits_sample_ratio_check_uses_the_weights_of_each_period(campaign) -> None:
    experiment = make_experiment(campaign, [("control", None), ("bold", None)], kind="bandit")
    phase = ExperimentPhase.objects.get(experiment=experiment)
    _exposures(experiment, phase, [500, 500], 0)  # burn-in at 50/50
    Allocation.objects.create(organization_id=experiment.organization_id, phase=phase, number=1,
                              weights=[0.1, 0.9])
    _exposures(experiment, phase, [100, 900], 1)  # then 10/90: as the weights said
    srm = experiment_results(experiment)["srm"]
    assert srm["expected"] == [600.0, 1400.0] and not srm["flagged"]
    # against the final weights alone the same visitors would look badly off
    naive = statistics.srm_p_value([600, 1400], [200.0, 1800.0])
    assert naive < statistics.SRM_THRESHOLD


def test_the_results_endpoint_answers_json_and_csv_and_refuses_bad_queries(campaign, org_a) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], key="headline")
    rng = random.Random(5)
    for i in range(20):
        _decide(campaign, f"visitor-api-{i:012d}", rng)
    client = api_client(make_api_key(org_a, scopes=("read",))[1])
    url = f"/api/v1/campaigns/{campaign.public_id}/results/"
    body = client.get(url).json()
    assert body["experiment"]["key"] == "headline" and body["visitors"] == 20
    assert body == {**experiment_results(experiment, now=timezone.now()), "computed_at": body["computed_at"]}
    as_csv = client.get(url, {"format": "csv", "experiment": "headline", "phase": 1})
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.content.decode())))
    assert len(rows) > 2
    for query, code in (({"phase": "x"}, 400), ({"phase": "²"}, 400), ({"phase": "١"}, 400), ({"phase": "7"}, 404),
                        ({"experiment": "nope"}, 404),
                        ({"format": "xml"}, 400)):
        response = client.get(url, query)
        assert response.status_code == code, (query, response.content)
        assert "error" in response.json()
    bare = make_campaign(org_a)
    assert client.get(f"/api/v1/campaigns/{bare.public_id}/results/").status_code == 404


@pytest.mark.parametrize("sequential", [True, False])
def test_the_results_statistics_are_those_of_campaigns_statistics_for_the_counts(campaign, sequential) -> None:
    experiment = make_experiment(campaign, [("control", 0.5), ("bold", 0.5)], sequential=sequential, seed="stats")
    rng = random.Random(11)
    for i in range(300):
        decision = _decide(campaign, f"visitor-stat-{i:011d}", rng)
        if rng.random() < (0.1 if decision.variant.key == "control" else 0.25):
            _event(decision, "conversion", value=Decimal("10"))
    results = experiment_results(experiment)
    conversion, revenue = results["metrics"][0], results["metrics"][1]
    (n_c, x_c), (n_t, x_t) = [(row["n"], row["count"]) for row in conversion["arms"]]
    expected = statistics.compare_proportions((x_c, n_c), (x_t, n_t), sequential=sequential)
    treatment = conversion["arms"][1]
    for field in ("uplift", "p_value", "chance_to_win", "expected_loss"):
        assert treatment[field] == pytest.approx(expected[field]), field
    assert treatment["uplift_interval"] == pytest.approx(list(expected["uplift_interval"]))
    if not sequential:
        assert treatment["p_value"] == pytest.approx(statistics.two_proportion_p_value(x_c, n_c, x_t, n_t))
    assert conversion["arms"][0]["interval"] == pytest.approx(list(statistics.wilson_interval(x_c, n_c)))
    sums = [(row["n"], row["value"] * row["n"], 100.0 * (row["value"] * row["n"] / 10)) for row in revenue["arms"]]
    assert revenue["arms"][1]["p_value"] == pytest.approx(
        statistics.compare_means(sums[0], sums[1], sequential=sequential)["p_value"])
    every = [row["p_value"] for metric in results["metrics"] for row in metric["arms"]]
    adjusted = [row["p_adjusted"] for metric in results["metrics"] for row in metric["arms"]]
    assert adjusted == statistics.holm_adjust(every)
    assert results["leader"] == max(conversion["arms"], key=lambda row: row["value"])["key"]


def test_the_segment_breakdown_counts_exposed_members_and_their_conversions_per_arm(campaign, org_a) -> None:
    from segments.models import Segment
    from segments.services import segment_save, segment_upload
    from tests.campaigns.experiment_factories import make_visitor, seed_experiment
    from tests.factories import make_subject

    variants = [campaign.variants.get(key="control"), campaign.variants.get(key="bold")]
    seeded = seed_experiment(campaign, variants)
    control, challenger = seeded.arms
    at = timezone.now() - timedelta(hours=2)
    subjects = [make_subject(org_a, partner_user_id=f"crm-{i}") for i in range(5)]
    # Members: crm-0..2 (control: converted, not; challenger: converted); crm-3 and an anonymous visitor are not.
    for subject, arm, converted in ((subjects[0], control, True), (subjects[1], control, False),
                                    (subjects[2], challenger, True), (subjects[3], challenger, True),
                                    (None, challenger, True)):
        make_visitor(seeded, arm, converted=converted, at=at, subject=subject)
    vip = segment_save(organization=org_a, key="vip", name="VIP", kind=Segment.Kind.STATIC)
    segment_upload(segment=vip, text="crm-0\ncrm-1\ncrm-2\ncrm-4\n")
    segment_save(organization=org_a, key="nobody", name="Nobody", kind=Segment.Kind.STATIC)
    table = experiment_results(seeded.experiment)["breakdowns"]["segment"]
    assert [group["segment"] for group in table] == ["vip"]  # a segment without exposed members has no row
    arms = {arm["key"]: (arm["visitors"], arm["conversions"]) for arm in table[0]["arms"]}
    assert arms == {control.variant.key: (2, 1), challenger.variant.key: (1, 1)}
