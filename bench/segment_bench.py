"""What a segment costs on PostgreSQL at scale (issue 15): a full recompute of a four-condition segment over
1,000,000 subjects and 10,000,000 frames' features, and the update of one subject's membership.

python bench/segment_bench.py [--subjects 1000000] [--frames 10000000] [--runs 5] [--updates 200] [--regenerate]

A database of its own (`visage_bench_segments`, VISAGE_BENCH_DB picks another), migrated here. The rows are written
once in SQL (INSERT ... SELECT generate_series; the big tables' secondary indexes are built after the load, foreign
keys are not re-checked row by row) and kept between runs: a later run finds them and starts at once
(--regenerate writes them anew). The data: one organization, one notice, subjects first seen over 180 days, grants
for face analysis (all), personalization (95 %) and partner sharing (80 %, some withdrawn), three capture sessions
a subject on average, frames and their features over 30 days in the order they were analysed, and a campaign's
decisions and events (an impression for half the subjects, a click for some of them over 60 days).

The segment: face.attention_share >= 0.6 over 7 days, behaviour.clicks >= 1 in 30 days, consent.partner_sharing
active, subject.days_since_first_seen <= 90 (face-based, so live face-analysis and personalization consent too).
Prints, per full recompute (`segments.services.segment_recompute`; the first from no members, the later ones ten
minutes apart, as the beat would run them) its time, rows/s, who entered and exited, and the Python process's peak
RSS during it (a sampling thread, and ru_maxrss); per one-subject update (`segment_refresh_subject`, and
`members_query(subject_id=...)` alone) median, p95 and the share under target; EXPLAIN (ANALYZE, BUFFERS) of the
full query and of the one-subject query with the indexes each used, and whether the one-subject plan scans the
feature table. The baseline, in the same run: the same four conditions checked in a Python loop over the rows
fetched for a 1 % sample of subjects (the bench checks both agree), extrapolated to all subjects for a ratio.
The issue's targets: full recompute under 10 s, one subject under 5 ms, the process under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics as stats
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_db  # noqa: E402

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "visage_bench_segments")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
bench_db.bench_environment(PG, BENCH_DB, redis_db=13)

# The data's "now": the rows are written relative to it and every run asks at it, so kept rows stay comparable.
ANCHOR = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400
SEGMENT_KEY = "bench-four"
DEFINITION = {"all": [
    {"field": "face.attention_share", "op": "gte", "value": 0.6, "window_seconds": 7 * DAY},
    {"field": "behaviour.clicks", "op": "gte", "value": 1, "window_seconds": 30 * DAY},
    {"field": "consent.partner_sharing", "op": "eq", "value": "active"},
    {"field": "subject.days_since_first_seen", "op": "lte", "value": 90},
]}
FULL_TARGET_S = 10.0
ONE_TARGET_MS = 5.0
RSS_TARGET_MB = 300
# The tables the load fills; their secondary indexes and unique constraints are built after it.
BIG_TABLES = ("consent_subject", "consent_grant", "faceanalysis_capturesession", "faceanalysis_frame",
              "faceanalysis_framefeatures", "campaigns_decision", "campaigns_event")


def ensure_database(*, fresh: bool) -> None:
    """The bench's own database, created anew with --regenerate, migrated either way."""
    bench_db.ensure_database(PG, BENCH_DB, fresh=fresh)


def generate(subjects: int, frames: int) -> None:
    """Every row of the bench, in SQL; the segment is saved last, so its presence says the data is complete."""
    from django.db import connection

    from segments.services import segment_save
    from tests.factories import (
        make_campaign,
        make_grant,
        make_notice,
        make_organization,
        make_subject,
        make_variant,
    )

    clock = time.perf_counter()
    organization = make_organization(name="Segment bench")
    notice = make_notice(organization, purposes=("face_analysis", "personalization", "partner_sharing"))
    template = make_grant(make_subject(organization), notice)  # what a real grant row holds, copied below
    campaign = make_campaign(organization, purposes=("face_analysis",), optional=("personalization",))
    variant = make_variant(campaign, key="control", default=True)
    sessions = subjects * 3
    params = {
        "org": organization.pk, "notice": notice.pk, "template": template.pk, "campaign": campaign.pk,
        "variant": variant.pk, "n": subjects, "sessions": sessions, "frames": frames, "anchor": ANCHOR,
        "extra": frames - sessions * 3,  # sessions whose number is below this get a fourth frame
    }

    def step(label: str, sql: str) -> None:
        started = time.perf_counter()
        cursor.execute(sql, params)
        print(f"  {label}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s", flush=True)

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # the rows are consistent by construction
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        rebuild = bench_db.drop_secondary_indexes(cursor, BIG_TABLES)
        # A deterministic pseudo-random integer in [0, 2^31) from a row number and a salt.
        cursor.execute("CREATE FUNCTION pg_temp.h(x bigint, salt int) RETURNS int LANGUAGE sql IMMUTABLE "
                       "AS $$ SELECT hashint8(x * 7 + salt) & 2147483647 $$")
        step("subjects", """
            INSERT INTO consent_subject (organization_id, public_id, partner_ref_hash, access_token_hash,
                created_at)
            SELECT %(org)s, md5('s' || i)::uuid, '', '',
                %(anchor)s::timestamptz - make_interval(secs => pg_temp.h(i, 1) %% (180 * 86400))
            FROM generate_series(1, %(n)s) AS i ORDER BY i""")
        cursor.execute("SELECT min(id) FROM consent_subject WHERE organization_id = %(org)s AND public_id = "
                       "md5('s1')::uuid", params)
        params["s0"] = cursor.fetchone()[0]
        # Grants: face analysis for all, personalization for 95 %, partner sharing for 80 % (1 in 25 withdrawn).
        step("grants", """
            INSERT INTO consent_grant (organization_id, subject_id, purpose, notice_id, notice_hash, language,
                channel, context_ref, evidence, granted_at, expires_at, ended_at, end_reason, end_channel)
            SELECT %(org)s, s.id, p.purpose, %(notice)s, t.notice_hash, t.language, t.channel, '', t.evidence,
                s.created_at, %(anchor)s::timestamptz + interval '365 days',
                CASE WHEN p.purpose = 'partner_sharing' AND pg_temp.h(s.id, 2) %% 25 = 0
                     THEN s.created_at + interval '1 day' END,
                CASE WHEN p.purpose = 'partner_sharing' AND pg_temp.h(s.id, 2) %% 25 = 0 THEN 'withdrawn' ELSE '' END,
                CASE WHEN p.purpose = 'partner_sharing' AND pg_temp.h(s.id, 2) %% 25 = 0 THEN t.channel ELSE '' END
            FROM consent_subject s
            CROSS JOIN (VALUES ('face_analysis'), ('personalization'), ('partner_sharing')) AS p (purpose)
            JOIN consent_grant t ON t.id = %(template)s
            WHERE s.organization_id = %(org)s AND s.id >= %(s0)s
              AND (p.purpose = 'face_analysis'
                   OR (p.purpose = 'personalization' AND pg_temp.h(s.id, 3) %% 20 <> 0)
                   OR (p.purpose = 'partner_sharing' AND pg_temp.h(s.id, 4) %% 5 <> 0))
            ORDER BY s.id""")
        # Sessions over the 30 days, in the order they started; each of a subject drawn by hash.
        step("capture sessions", """
            INSERT INTO faceanalysis_capturesession (organization_id, public_id, subject_id, campaign_id, grant_id,
                purposes, required_purposes, derived_attributes, source, media_ref, started_at, end_reason,
                token_hash, aggregates)
            SELECT %(org)s, md5('c' || x.i)::uuid, x.subject_id, %(campaign)s, g.id, 'face_analysis,personalization',
                'face_analysis', c.derived_attributes, 'browser_stream', '',
                %(anchor)s::timestamptz - interval '30 days'
                    + make_interval(secs => x.i * (30.0 * 86400) / %(sessions)s),
                '', '', '{}'
            FROM (SELECT i, %(s0)s + pg_temp.h(i, 5) %% %(n)s AS subject_id
                  FROM generate_series(1, %(sessions)s) AS i) AS x
            JOIN consent_grant g ON g.subject_id = x.subject_id AND g.purpose = 'face_analysis'
            JOIN campaigns_campaign c ON c.id = %(campaign)s
            ORDER BY x.i""")
        cursor.execute("SELECT min(id) FROM faceanalysis_capturesession WHERE organization_id = %(org)s", params)
        params["c0"] = cursor.fetchone()[0]
        # Three or four frames a session, two seconds apart: 10 M frames in the order they were received.
        step("frames", """
            INSERT INTO faceanalysis_frame (organization_id, public_id, session_id, subject_id, grant_id, status,
                reason, origin, content_type, byte_size, width, height, queue, received_at, finished_at)
            SELECT c.organization_id, md5('f' || c.id || '-' || j)::uuid, c.id, c.subject_id, c.grant_id,
                'analyzed', '', 'image', 'image/jpeg', 30000, 640, 480, 'analysis',
                c.started_at + make_interval(secs => 2 * j), c.started_at + make_interval(secs => 2 * j + 1)
            FROM faceanalysis_capturesession c
            CROSS JOIN LATERAL generate_series(1, CASE WHEN c.id - %(c0)s < %(extra)s THEN 4 ELSE 3 END) AS j
            WHERE c.organization_id = %(org)s
            ORDER BY c.id, j""")
        # Each subject looks at the screen with its own propensity (20-89 %); 5 % of frames without a face,
        # 10 % failing the quality gate.
        step("frame features", """
            INSERT INTO faceanalysis_framefeatures (organization_id, frame_id, session_id, subject_id, grant_id,
                face_count, quality_ok, quality_reasons, attention_score, looking_at_screen, eyes_open, smile,
                expression, expression_confidence, age_years, gender, gender_confidence, faces, model_versions,
                received_at, analyzed_at, latency_ms)
            SELECT f.organization_id, f.id, f.session_id, f.subject_id, f.grant_id,
                CASE WHEN pg_temp.h(f.id, 6) %% 20 = 0 THEN 0 ELSE 1 END,
                pg_temp.h(f.id, 7) %% 10 <> 0, '[]', (pg_temp.h(f.id, 8) %% 100) / 100.0,
                pg_temp.h(f.id, 8) %% 100 < 20 + f.subject_id %% 70, true, (pg_temp.h(f.id, 9) %% 100) / 100.0,
                (ARRAY['neutral', 'happiness', 'surprise', 'sadness'])[pg_temp.h(f.id, 10) %% 4 + 1], 0.8,
                18 + f.subject_id %% 50, (ARRAY['female', 'male'])[f.subject_id %% 2 + 1], 0.9, '[]', '[]',
                f.received_at, f.finished_at, 40.0
            FROM faceanalysis_frame f WHERE f.organization_id = %(org)s
            ORDER BY f.id""")
        # Half the subjects had a decision over the last 60 days with its impression; 30 % of those clicked.
        step("decisions", """
            INSERT INTO campaigns_decision (organization_id, public_id, campaign_id, visitor_id, subject_id,
                variant_id, rule_id, experiment_arm_id, reason, channel, trace, attributes, created_at)
            SELECT %(org)s, md5('d' || s.id)::uuid, %(campaign)s, 'visitor-' || s.id, s.id, %(variant)s, NULL, NULL,
                'default', 'api', '[]', '{}',
                %(anchor)s::timestamptz - make_interval(secs => pg_temp.h(s.id, 11) %% (60 * 86400))
            FROM consent_subject s
            WHERE s.organization_id = %(org)s AND s.id >= %(s0)s AND pg_temp.h(s.id, 12) %% 2 = 0
            ORDER BY s.id""")
        step("events", """
            INSERT INTO campaigns_event (organization_id, decision_id, campaign_id, variant_id, rule_id, subject_id,
                exposure_id, kind, name, value, currency, client_event_id, occurred_at, received_at)
            SELECT d.organization_id, d.id, d.campaign_id, d.variant_id, NULL, d.subject_id, NULL, k.kind, '', NULL,
                '', k.kind || '-' || d.id, d.created_at + k.after, d.created_at + k.after
            FROM campaigns_decision d
            CROSS JOIN (VALUES ('impression', interval '1 second'), ('click', interval '20 seconds')) AS k (kind, after)
            WHERE d.campaign_id = %(campaign)s AND (k.kind = 'impression' OR pg_temp.h(d.id, 13) %% 10 < 3)
            ORDER BY d.id""")
        started = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        print(f"  {len(rebuild)} indexes and unique constraints built in {time.perf_counter() - started:.1f} s")
        cursor.execute("RESET session_replication_role")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    segment_save(organization=organization, key=SEGMENT_KEY, name="Attentive recent clickers who share",
                 definition=DEFINITION)
    print(f"generated in {time.perf_counter() - clock:.0f} s")


class PeakRss:
    """The process's resident set size sampled every 5 ms on a thread, and its highest value."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def explain(queryset, *, exists: bool = False) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the queryset's SQL (of its EXISTS form with `exists`); the full query with the
    memory a full run gives itself, so the plan is the one the run gets."""
    from django.db import connection, transaction

    from segments.services import RUN_WORK_MEM

    query = queryset.query.exists() if exists else queryset.values("pk").query
    sql, params = query.get_compiler(connection=connection).as_sql()
    with transaction.atomic(), connection.cursor() as cursor:
        if not exists:
            cursor.execute(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def plan_summary(plan: str) -> tuple[list[str], list[str]]:
    """(indexes used, tables scanned sequentially) in a text plan."""
    indexes = sorted(set(re.findall(r"Index (?:Only )?Scan (?:Backward )?(?:using|on) (\w+)", plan)))
    seq = sorted(set(re.findall(r"Seq Scan on (\w+)", plan)))
    return indexes, seq


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def python_baseline(organization_id: int, first: int, last: int, now: datetime) -> tuple[set[int], float, int]:
    """The four conditions (and the face consent) for 1 % of the subjects, by fetching their rows and checking
    each in a Python loop. Returns (members, seconds, rows fetched)."""
    from django.db import connection

    from consent.guards import LIVE_NOTICE_STATUSES

    started = time.perf_counter()
    sample = list(range(first, last + 1, 100))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, created_at, erased_at FROM consent_subject WHERE organization_id = %s "
                       "AND id = ANY(%s)", [organization_id, sample])
        subjects = cursor.fetchall()
        cursor.execute("SELECT subject_id, face_count, quality_ok, looking_at_screen FROM faceanalysis_framefeatures "
                       "WHERE organization_id = %s AND subject_id = ANY(%s) AND analyzed_at >= %s "
                       "AND analyzed_at <= %s", [organization_id, sample, now - timedelta(days=7), now])
        frames = cursor.fetchall()
        cursor.execute("SELECT subject_id, kind, received_at FROM campaigns_event WHERE organization_id = %s "
                       "AND subject_id = ANY(%s)", [organization_id, sample])
        events = cursor.fetchall()
        cursor.execute("SELECT g.subject_id, g.purpose, g.ended_at, g.expires_at, n.status FROM consent_grant g "
                       "JOIN consent_noticeversion n ON n.id = g.notice_id WHERE g.organization_id = %s "
                       "AND g.subject_id = ANY(%s)", [organization_id, sample])
        grants = cursor.fetchall()
    looked: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for subject_id, face_count, quality_ok, looking in frames:
        if face_count >= 1 and quality_ok and looking is not None:
            looked[subject_id][0] += 1
            looked[subject_id][1] += looking
    clicks: dict[int, int] = defaultdict(int)
    for subject_id, kind, received_at in events:
        if kind == "click" and now - timedelta(days=30) <= received_at <= now:
            clicks[subject_id] += 1
    live: dict[int, set[str]] = defaultdict(set)
    for subject_id, purpose, ended_at, expires_at, status in grants:
        if ended_at is None and expires_at > now and status in LIVE_NOTICE_STATUSES:
            live[subject_id].add(purpose)
    members = set()
    for subject_id, created_at, erased_at in subjects:
        n, hits = looked.get(subject_id, (0, 0))
        if (erased_at is None and n >= 3 and hits / n >= 0.6 and clicks[subject_id] >= 1
                and {"face_analysis", "personalization", "partner_sharing"} <= live[subject_id]
                and (now - created_at).days <= 90):
            members.add(subject_id)
    return members, time.perf_counter() - started, len(subjects) + len(frames) + len(events) + len(grants)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5, help="full recomputes")
    parser.add_argument("--updates", type=int, default=200, help="one-subject updates")
    parser.add_argument("--regenerate", action="store_true", help="write the rows anew")
    args = parser.parse_args()
    ensure_database(fresh=args.regenerate)

    from django.db import connection

    from consent.models import Subject
    from faceanalysis.models import FrameFeatures
    from segments.compiler import members_query
    from segments.models import Segment, SegmentMembership
    from segments.services import segment_recompute, segment_refresh_subject

    segment = Segment.objects.filter(key=SEGMENT_KEY, organization__name__startswith="Segment bench").first()
    if segment is None:
        print(f"generating {args.subjects:,} subjects and {args.frames:,} frames' features (kept for later runs)")
        connection.close()  # the database is dropped: an earlier load may have stopped half way
        ensure_database(fresh=True)
        generate(args.subjects, args.frames)
        segment = Segment.objects.get(key=SEGMENT_KEY, organization__name__startswith="Segment bench")
    org = segment.organization_id
    subjects = Subject.objects.filter(organization_id=org).count()
    features = FrameFeatures.objects.filter(organization_id=org).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('faceanalysis_framefeatures'))")
        size = cursor.fetchone()[0]
    print(f"rows: {subjects:,} subjects, {features:,} frame features ({size} with indexes); segment {segment.key}")

    # --- full recomputes ----------------------------------------------------------------------------------------
    SegmentMembership.objects.filter(segment=segment).delete()
    rows = subjects + features
    times, peaks = [], []
    now = ANCHOR
    for run in range(1, args.runs + 1):
        now = ANCHOR + timedelta(minutes=10 * (run - 1))
        with PeakRss() as rss:
            started = time.perf_counter()
            result = segment_recompute(segment_id=segment.pk, now=now)
            elapsed = time.perf_counter() - started
        times.append(elapsed)
        peaks.append(rss.peak / 2**20)
        print(f"full run {run}: {elapsed * 1000:,.0f} ms ({rows / elapsed:,.0f} rows/s), size {result.size:,} "
              f"(entered {result.entered:,}, exited {result.exited:,}); peak RSS {rss.peak / 2**20:.0f} MB",
              flush=True)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the baseline fetches rows

    # --- one subject --------------------------------------------------------------------------------------------
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM consent_subject WHERE organization_id = %s", [org])
        first, last = cursor.fetchone()
    chosen = random.Random(15).sample(range(first, last + 1), args.updates)
    tree = segment.definition
    refresh, query = [], []
    changed = 0
    for subject_id in chosen:
        started = time.perf_counter()
        members_query(tree, organization_id=org, now=now, subject_id=subject_id).exists()
        query.append((time.perf_counter() - started) * 1000)
    for index, subject_id in enumerate(chosen):
        # Half of them a little later than the last full run, so some enter or exit as time moves on.
        at = now + timedelta(hours=12 * (index % 2))
        started = time.perf_counter()
        changed += bool(segment_refresh_subject(organization_id=org, subject_id=subject_id, now=at))
        refresh.append((time.perf_counter() - started) * 1000)

    # --- plans --------------------------------------------------------------------------------------------------
    full_plan = explain(members_query(tree, organization_id=org, now=now))
    one_plan = explain(members_query(tree, organization_id=org, now=now, subject_id=chosen[0]), exists=True)
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the full query:\n" + full_plan)
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the one-subject query:\n" + one_plan)
    full_indexes, full_seq = plan_summary(full_plan)
    one_indexes, one_seq = plan_summary(one_plan)

    # --- baseline -----------------------------------------------------------------------------------------------
    members, t_base, fetched = python_baseline(org, first, last, now)
    # The one-subject updates above moved some memberships on by 12 hours: compare at the full run's time.
    sql_members = set(members_query(tree, organization_id=org, now=now).filter(
        pk__in=range(first, last + 1, 100)).values_list("pk", flat=True))
    assert members == sql_members, f"SQL and the Python loop disagree: {len(members)} vs {len(sql_members)}"

    median = stats.median(times)
    print(f"\nindexes in the full plan: {', '.join(full_indexes) or 'none'}; sequential scans: "
          f"{', '.join(full_seq) or 'none'}")
    print(f"indexes in the one-subject plan: {', '.join(one_indexes)}; sequential scans: {', '.join(one_seq) or 'none'}"
          f"; feature table scanned sequentially: {'YES' if 'faceanalysis_framefeatures' in one_seq else 'no'}")
    print(f"Python-loop baseline on a 1 % sample ({len(members)} members of {len(range(first, last + 1, 100)):,} "
          f"subjects, {fetched:,} rows fetched, same answer as SQL): {t_base * 1000:,.0f} ms, x100 = "
          f"{t_base * 100:,.1f} s = {t_base * 100 / median:.1f}x the median full recompute")
    print(f"full recompute: median {median * 1000:,.0f} ms, p95 {percentile(times, 0.95) * 1000:,.0f} ms, "
          f"{rows / median:,.0f} rows/s; under {FULL_TARGET_S:.0f} s in {sum(t < FULL_TARGET_S for t in times)}"
          f"/{len(times)} runs")
    for label, values in (("segment_refresh_subject", refresh), ("members_query(subject_id).exists()", query)):
        print(f"one subject, {label}: median {stats.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms, "
              f"max {max(values):.2f} ms; under {ONE_TARGET_MS:.0f} ms in "
              f"{sum(v < ONE_TARGET_MS for v in values)}/{len(values)}")
    print(f"({changed} of {len(chosen)} updates changed a membership)")
    print(f"process peak RSS during the full recomputes: {max(peaks):.0f} MB sampled, {maxrss:.0f} MB ru_maxrss "
          f"(target under {RSS_TARGET_MB} MB)")


if __name__ == "__main__":
    main()
