"""What an experiment's results cost on PostgreSQL at scale: a campaign with 1,000,000 exposures (and as many
decisions) and 50,000 conversions over three arms, plus consenting visitors' face features for the reaction
metrics.

python bench/experiment_bench.py [--exposures 1000000] [--conversions 50000] [--repeat 3] [--keep]

A database of its own (`visage_bench_experiments`, VISAGE_BENCH_DB picks another), migrated here; the rows are
written once with INSERT ... SELECT generate_series (kept between runs with --keep). Prints, per run, the time of
each step of `campaigns.results.experiment_results` (exposure cells, event cells, reaction sums, rule breakdown,
and the whole with its statistics), rows per second, and the peak memory the results took (tracemalloc, Python
objects) and the process's peak RSS. The baseline, measured in the same run: the same visitor and conversion
counts by fetching the rows and counting them in a Python loop; the bench checks both agree.
The issue's target: results under 2 s, peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics as stats
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_db  # noqa: E402

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "visage_bench_experiments")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
bench_db.bench_environment(PG, BENCH_DB, redis_db=13)

SUBJECTS = 2000  # consenting visitors with face features
FRAMES_PER_SUBJECT = 10


def ensure_database(*, fresh: bool) -> None:
    """The bench's own database, created anew unless an earlier run's rows are kept."""
    bench_db.ensure_database(PG, BENCH_DB, fresh=fresh)


def seed(exposures: int, conversions: int):
    """The campaign, its three arms and the rows, written in SQL; returns the experiment."""
    from django.db import connection

    from campaigns.models import Experiment
    from tests.factories import (
        make_campaign,
        make_experiment,
        make_grant,
        make_notice,
        make_organization,
        make_subject,
        make_variant,
    )

    existing = Experiment.objects.filter(key="bench").first()
    if existing is not None:
        return existing
    organization = make_organization(name="Bench")
    notice = make_notice(organization)
    campaign = make_campaign(organization)
    for key in ("control", "bold", "calm"):
        make_variant(campaign, key=key, default=key == "control")
    third = 1 / 3  # the rows below split visitors evenly: the sample-ratio check should find nothing
    experiment = make_experiment(campaign, [("control", third), ("bold", third), ("calm", third)], key="bench")
    phase = experiment.phases.get()
    arms = phase.arm_ids
    variants = dict(experiment.arms.values_list("pk", "variant_id"))
    subject_ids = []
    grant = None
    for _ in range(SUBJECTS):  # each consents: reaction metrics count only live consent
        subject = make_subject(organization)
        subject_grant = make_grant(subject, notice)
        grant = grant or subject_grant
        subject_ids.append(subject.pk)
    from faceanalysis.models import CaptureSession

    session = CaptureSession.objects.create(
        organization=organization, subject_id=subject_ids[0], campaign=campaign, grant=grant,
        purposes="face_analysis", required_purposes="face_analysis", derived_attributes=campaign.derived_attributes,
        source="browser_stream",
    )
    # The phase began a day ago: its million visitors arrived over the 14 hours after (20 a second).
    from datetime import timedelta

    start = phase.started_at - timedelta(days=1)
    type(phase).objects.filter(pk=phase.pk).update(started_at=start)
    params = {
        "org": organization.pk, "campaign": campaign.pk, "experiment": experiment.pk, "phase": phase.pk,
        "a0": arms[0], "a1": arms[1], "a2": arms[2], "v0": variants[arms[0]], "v1": variants[arms[1]],
        "v2": variants[arms[2]], "n": exposures, "start": start, "every": max(exposures // conversions, 1),
        "first_subject": subject_ids[0], "subjects": SUBJECTS, "session": session.pk, "grant": grant.pk,
        "frames": SUBJECTS * FRAMES_PER_SUBJECT,
    }
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO campaigns_decision (organization_id, public_id, campaign_id, visitor_id, subject_id,
                variant_id, rule_id, experiment_arm_id, reason, channel, trace, attributes, created_at)
            SELECT %(org)s, md5(i::text)::uuid, %(campaign)s, 'visitor-' || lpad(i::text, 12, '0'),
                CASE WHEN i <= %(subjects)s THEN %(first_subject)s + i - 1 END,
                (ARRAY[%(v0)s, %(v1)s, %(v2)s])[i %% 3 + 1], NULL, (ARRAY[%(a0)s, %(a1)s, %(a2)s])[i %% 3 + 1],
                'experiment', 'snippet', '[]',
                json_build_object('device', (ARRAY['desktop','mobile','tablet'])[i %% 3 + 1],
                                  'language', (ARRAY['en','de','fr','es'])[i %% 4 + 1], 'country', ''),
                %(start)s::timestamptz + (i || ' seconds')::interval / 20
            FROM generate_series(1, %(n)s) AS i""", params)
        cursor.execute("""
            INSERT INTO campaigns_exposure (organization_id, experiment_id, phase_id, campaign_id, arm_id,
                allocation_number, visitor_id, subject_id, device, language, exposed_at)
            SELECT organization_id, %(experiment)s, %(phase)s, campaign_id, experiment_arm_id, 0, visitor_id,
                subject_id, attributes->>'device', attributes->>'language', created_at
            FROM campaigns_decision WHERE campaign_id = %(campaign)s""", params)
        # Conversions: every `every`-th visitor, arm 2 a little more often (a real difference to find).
        cursor.execute("""
            INSERT INTO campaigns_event (organization_id, decision_id, campaign_id, variant_id, rule_id, subject_id,
                exposure_id, kind, name, value, currency, client_event_id, occurred_at, received_at)
            SELECT d.organization_id, d.id, d.campaign_id, d.variant_id, NULL, d.subject_id, x.id, 'conversion',
                'purchase', (d.id %% 50) + 9.99, 'EUR', 'c-' || d.id, d.created_at + interval '30 seconds',
                d.created_at + interval '30 seconds'
            FROM campaigns_decision d
            JOIN campaigns_exposure x ON x.phase_id = %(phase)s AND x.visitor_id = d.visitor_id
            WHERE d.campaign_id = %(campaign)s
              AND (d.id %% %(every)s = 0 OR (d.experiment_arm_id = %(a2)s AND d.id %% (%(every)s * 10) = 1))""", params)
        cursor.execute("""
            INSERT INTO faceanalysis_frame (organization_id, public_id, session_id, subject_id, grant_id, status,
                reason, origin, content_type, byte_size, width, height, queue, received_at, finished_at)
            SELECT %(org)s, md5('f' || i::text)::uuid, %(session)s, %(first_subject)s + (i %% %(subjects)s),
                %(grant)s, 'analyzed', '', 'image', 'image/jpeg', 1000, 64, 64, 'analysis',
                %(start)s::timestamptz + interval '1 hour', %(start)s::timestamptz + interval '1 hour'
            FROM generate_series(1, %(frames)s) AS i""", params)
        cursor.execute("""
            INSERT INTO faceanalysis_framefeatures (organization_id, frame_id, session_id, subject_id, grant_id,
                face_count, quality_ok, quality_reasons, attention_score, looking_at_screen, smile, expression,
                faces, model_versions, received_at, analyzed_at, latency_ms)
            SELECT f.organization_id, f.id, f.session_id, f.subject_id, f.grant_id, 1, true, '[]', 0.5,
                f.id %% 3 <> 0, (f.id %% 10) / 10.0, '', '[]', '{}', f.received_at,
                f.received_at + interval '1 second', 10.0
            FROM faceanalysis_frame f WHERE f.session_id = %(session)s""", params)
        cursor.execute("ANALYZE")
    return experiment


def python_baseline(experiment) -> tuple[Counter, Counter, float]:
    """Visitors and converters per arm by fetching the rows and counting them in Python."""
    from django.db import connection

    phase = experiment.phases.get()
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT visitor_id, arm_id, exposed_at FROM campaigns_exposure WHERE phase_id = %s",
                       [phase.pk])
        exposures = {visitor: (arm, at) for visitor, arm, at in cursor.fetchall()}
        cursor.execute(
            "SELECT d.visitor_id, d.created_at FROM campaigns_event e "
            "JOIN campaigns_decision d ON d.id = e.decision_id "
            "WHERE e.campaign_id = %s AND e.kind = 'conversion'", [experiment.campaign_id])
        events = cursor.fetchall()
    visitors = Counter(arm for arm, _ in exposures.values())
    converted = {visitor for visitor, made in events if visitor in exposures and made >= exposures[visitor][1]}
    converters = Counter(exposures[visitor][0] for visitor in converted)
    return visitors, converters, time.perf_counter() - start


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse the rows of an earlier run")
    args = parser.parse_args()
    ensure_database(fresh=not args.keep)
    from django.utils import timezone

    from campaigns import results
    from campaigns.models import Event, Exposure

    start = time.perf_counter()
    experiment = seed(args.exposures, args.conversions)
    phase = experiment.phases.get()
    exposures = Exposure.objects.filter(phase=phase).count()
    conversions = Event.objects.filter(campaign_id=experiment.campaign_id, kind="conversion").count()
    print(f"rows: {exposures} exposures and decisions, {conversions} conversions "
          f"(seeded or found in {time.perf_counter() - start:.1f} s)")

    totals, answers = [], []
    rows = exposures * 2 + conversions
    for run in range(1, args.repeat + 1):
        end = timezone.now()
        _, t_cells = timed(results.exposure_cells, phase)
        _, t_events = timed(results.event_cells, phase, campaign_id=experiment.campaign_id, custom_events=[])
        _, t_react = timed(results.reaction_sums, phase, campaign=experiment.campaign, end=end)
        _, t_rules = timed(results._rule_breakdown, experiment.campaign, start=phase.started_at, end=None)
        tracemalloc.start()
        answer, t_total = timed(results.experiment_results, experiment)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        totals.append(t_total)
        answers.append(answer)
        print(f"run {run}: results {t_total * 1000:.0f} ms ({rows / t_total:,.0f} rows/s; steps: exposure cells "
              f"{t_cells * 1000:.0f} ms, event cells {t_events * 1000:.0f} ms, reactions {t_react * 1000:.0f} ms, "
              f"rule breakdown {t_rules * 1000:.0f} ms); Python objects at peak {peak / 2**20:.1f} MB")
    # Before the baseline, which holds every row in memory: the process's peak so far is the results' own.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    visitors, converters, t_base = python_baseline(experiment)
    conversion = answers[-1]["metrics"][0]["arms"]
    for index, arm_id in enumerate(phase.arm_ids):
        assert conversion[index]["n"] == visitors[arm_id], "SQL and the Python loop disagree on visitors"
        assert conversion[index]["count"] == converters[arm_id], "SQL and the Python loop disagree on converters"
    held = sum(t < 2.0 for t in totals)
    median = stats.median(totals)
    print(f"Python-loop baseline (visitor and converter counts only, same answer) {t_base * 1000:.0f} ms = "
          f"{t_base / median:.1f}x the median results")
    print(f"median results {median * 1000:.0f} ms; target under 2 s held in {held}/{len(totals)} runs; "
          f"process peak RSS {rss:.0f} MB through the results (target under 300 MB); "
          f"leader {answers[-1]['leader']}, SRM p {answers[-1]['srm']['p_value']}")


if __name__ == "__main__":
    main()
