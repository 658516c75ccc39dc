"""What a retention run costs on PostgreSQL at scale (issue 16): the purge of 10,000,000 expired feature rows (and
their frames' metadata), in bounded batches, without a lock held long.

VISAGE_BENCH_DB=ret_bench .venv/bin/python bench/retention_bench.py

A database of its own (`ret_bench`; VISAGE_BENCH_DB picks another), created anew each run (the run deletes what
it measures). The rows are written in SQL (INSERT ... SELECT generate_series; the secondary indexes of the
migrations are dropped for the load and built after it, foreign keys not re-checked row by row): one
organization's VISAGE_BENCH_ROWS (10 M) frames and their features analysed 400 days ago (past the 365-day
period), and 1,000 young ones that must stay; a second organization's VISAGE_BENCH_BASELINE_ROWS (1 M) expired
features for the baseline.

The run is the real one, in this process, on the path beat takes (`consent.purging.retention_run`, whose parts
run after its commit as the eager embedded default runs them: `purge_part_run`, batch by batch). The purging
session runs with `SET lock_timeout = '1s'`, so any lock it waits for longer fails the run. Printed: rows/s and
total time per table, the longest batch transaction measured in the code (a row lock lasts only as long as its
transaction), and from a second connection sampling pg_locks every 50 ms: the longest stretch one transaction
of the purging backend was seen holding its transaction id (its row locks), and any lock anyone waited for.
The baseline, in the same run: the old purge (one DELETE of all the organization's expired features in one
transaction) over the second organization's 1 M rows, for the per-row cost ratio and its one long lock.
Targets: 10 M feature rows in under 60 s, no batch transaction over 1 s.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_db  # noqa: E402

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "ret_bench")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
ROWS = int(os.environ.get("VISAGE_BENCH_ROWS", "10000000"))
BASELINE_ROWS = int(os.environ.get("VISAGE_BENCH_BASELINE_ROWS", "1000000"))
YOUNG_ROWS = 1000
bench_db.bench_environment(PG, BENCH_DB, redis_db=12)

ANCHOR = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # the run's "now"
TOTAL_TARGET_S = 60.0
LOCK_TARGET_S = 1.0
SAMPLE_S = 0.05
BIG_TABLES = ("faceanalysis_frame", "faceanalysis_framefeatures")

# Figures other benches add to this report (the lead's hook: e.g. bench/subject_export_bench.py's export of one
# subject on this same database). Each is called after the purge with the organization ids and prints its lines.
EXTRA_FIGURES: list[Callable[[dict[str, int]], None]] = []


def generate() -> dict[str, int]:
    """The bench's rows; returns the organizations' ids."""
    from django.db import connection

    from consent.models import RetentionPolicy
    from faceanalysis.models import CaptureSession
    from tests.factories import make_campaign, make_grant, make_notice, make_organization, make_subject

    ids = {}
    sessions = {}
    for key, name in (("purged", "Retention bench"), ("baseline", "Retention baseline")):
        organization = make_organization(name=name)
        # The baseline's organization keeps three years, so the run leaves its rows to the baseline's own delete.
        RetentionPolicy.objects.create(organization=organization, feature_retention_days=365 if key == "purged"
                                       else 3 * 365)
        notice = make_notice(organization, purposes=("face_analysis",))
        subject = make_subject(organization)
        grant = make_grant(subject, notice, purposes=("face_analysis",))
        campaign = make_campaign(organization, purposes=("face_analysis",))
        session = CaptureSession.objects.create(
            organization=organization, subject=subject, campaign=campaign, grant=grant, purposes="face_analysis",
            source=CaptureSession.Source.BROWSER_STREAM,
        )
        ids[key] = organization.pk
        sessions[key] = session

    def step(label: str, sql: str, params: dict) -> None:
        started = time.perf_counter()
        cursor.execute(sql, params)
        print(f"  {label}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s", flush=True)

    frames_sql = """
        INSERT INTO faceanalysis_frame (organization_id, public_id, session_id, subject_id, grant_id, status,
            reason, origin, content_type, byte_size, width, height, queue, received_at, finished_at)
        SELECT %(org)s, md5(%(salt)s || i)::uuid, %(session)s, %(subject)s, %(grant)s, 'analyzed', '', 'image',
            'image/jpeg', 30000, 640, 480, 'analysis',
            %(start)s::timestamptz + make_interval(secs => i * %(step)s),
            %(start)s::timestamptz + make_interval(secs => i * %(step)s + 0.05)
        FROM generate_series(1, %(n)s) AS i ORDER BY i"""
    features_sql = """
        INSERT INTO faceanalysis_framefeatures (organization_id, frame_id, session_id, subject_id, grant_id,
            face_count, quality_ok, quality_reasons, attention_score, looking_at_screen, eyes_open, smile,
            expression, expression_confidence, age_years, gender, gender_confidence, faces, model_versions,
            received_at, analyzed_at, latency_ms)
        SELECT f.organization_id, f.id, f.session_id, f.subject_id, f.grant_id, 1, true, '[]',
            (f.id %% 100) / 100.0, f.id %% 3 > 0, true, (f.id %% 97) / 97.0, 'neutral', 0.8, 30, 'female', 0.9,
            '[]', '[]', f.received_at, f.finished_at, 40.0
        FROM faceanalysis_frame f WHERE f.organization_id = %(org)s AND f.id >= %(first)s ORDER BY f.id"""
    clock = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # the rows are consistent by construction
        cursor.execute("SET maintenance_work_mem = '1GB'")
        rebuild = bench_db.drop_secondary_indexes(cursor, BIG_TABLES)
        expired_start = ANCHOR - timedelta(days=430)  # 400 days ago and earlier, spread over 30 days
        loads = (
            ("purged", "expired", ROWS, expired_start, 30 * 86400 / max(ROWS, 1)),
            ("purged", "young", YOUNG_ROWS, ANCHOR - timedelta(days=10), 60.0),
            ("baseline", "expired", BASELINE_ROWS, expired_start, 30 * 86400 / max(BASELINE_ROWS, 1)),
        )
        for key, kind, n, start, step_s in loads:
            session = sessions[key]
            params = {"org": ids[key], "salt": f"{key}-{kind}-", "session": session.pk, "subject": session.subject_id,
                      "grant": session.grant_id, "start": start, "step": step_s, "n": n}
            cursor.execute("SELECT COALESCE(max(id), 0) + 1 FROM faceanalysis_frame")
            params["first"] = cursor.fetchone()[0]
            step(f"{key} organization, {kind} frames", frames_sql, params)
            step(f"{key} organization, {kind} features", features_sql, params)
        started = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        print(f"  {len(rebuild)} indexes and unique constraints built in {time.perf_counter() - started:.1f} s")
        cursor.execute("RESET session_replication_role")
        started = time.perf_counter()
        for table in BIG_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    print(f"generated in {time.perf_counter() - clock:.0f} s", flush=True)
    return ids


class LockSampler:
    """From a connection of its own, every 50 ms: the purging backend's transaction id (held while it holds row
    locks), and every lock anyone in this database waits for. `longest_held_s` is the longest stretch one
    transaction id was seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples = 0
        self.waits: list[tuple] = []
        self.longest_held_s = 0.0
        self._stop = threading.Event()

    def _run(self) -> None:
        import psycopg

        current, since = None, 0.0
        with psycopg.connect(f"{PG}/{BENCH_DB}", autocommit=True) as conn:
            while not self._stop.wait(SAMPLE_S):
                now = time.monotonic()
                rows = conn.execute(
                    "SELECT l.transactionid::text, l.granted, l.locktype, l.mode, l.relation::regclass::text, l.pid "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE a.datname = current_database() AND (l.pid = %s OR NOT l.granted)", [self.pid]).fetchall()
                self.samples += 1
                held = next((r[0] for r in rows if r[2] == "transactionid" and r[5] == self.pid and r[1]), None)
                self.waits += [r for r in rows if not r[1]]
                if held != current:
                    current, since = held, now
                elif held is not None:
                    self.longest_held_s = max(self.longest_held_s, now - since)

    def __enter__(self) -> LockSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def baseline(organization_id: int) -> tuple[int, float]:
    """The purge as it was: every expired feature row of the organization in one DELETE, one transaction."""
    from django.db import transaction

    from faceanalysis.models import FrameFeatures

    started = time.perf_counter()
    with transaction.atomic():
        deleted, _ = FrameFeatures.objects.filter(organization_id=organization_id,
                                                  analyzed_at__lt=ANCHOR - timedelta(days=365)).delete()
    return deleted, time.perf_counter() - started


def main() -> None:
    print(f"database {BENCH_DB}: {ROWS:,} expired frames and features (+{YOUNG_ROWS:,} young), baseline "
          f"{BASELINE_ROWS:,}", flush=True)
    bench_db.ensure_database(PG, BENCH_DB, fresh=True)
    from django.conf import settings
    from django.db import connection

    from consent import purging
    from consent.models import LedgerEntry, PurgePart
    from faceanalysis.models import Frame, FrameFeatures

    ids = generate()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('faceanalysis_framefeatures')), "
                       "pg_size_pretty(pg_total_relation_size('faceanalysis_frame'))")
        sizes = cursor.fetchone()
    print(f"tables with indexes: features {sizes[0]}, frames {sizes[1]}; batch {settings.VISAGE_RETENTION_BATCH:,}")

    base_rows, base_s = baseline(ids["baseline"])
    print(f"baseline (one transaction): {base_rows:,} feature rows in {base_s:.2f} s = {base_rows / base_s:,.0f} "
          f"rows/s, its row locks held {base_s:.2f} s", flush=True)

    batches: dict[str, list[float]] = defaultdict(list)  # per table: each batch's transaction, in seconds

    def observe(category: str, seconds: float, counts: dict[str, int]) -> None:
        batches[next(iter(counts), "receipt (the final transaction)")].append(seconds)

    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '1s'")  # for the whole session: any wait over 1 s fails the run
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    started = time.perf_counter()
    with LockSampler(pid) as sampler, purging.retention_batches_observed(observe):
        requests = purging.retention_run(now=ANCHOR)
        # A part that ran past VISAGE_RETENTION_PART_SECONDS stopped ("continues"): beat's redispatch sends it
        # again; here at once, in this process.
        while owed := list(PurgePart.objects.filter(request__in=requests, status="owed").values_list("pk", flat=True)):
            for part_id in owed:
                print(f"  part {part_id} continued: {purging.purge_part_run(part_id=part_id)}", flush=True)
    total_s = time.perf_counter() - started

    parts = list(PurgePart.objects.filter(request__in=requests).order_by("pk"))
    counts: dict[str, int] = defaultdict(int)
    for part in parts:
        for name, count in part.counts.items():
            counts[name] += count
    features_left = FrameFeatures.objects.filter(organization_id=ids["purged"]).count()
    frames_left = Frame.objects.filter(organization_id=ids["purged"]).count()
    receipts = LedgerEntry.objects.filter(organization_id=ids["purged"], event=LedgerEntry.Event.PURGED).count()
    print(f"\nretention run: {total_s:.1f} s, parts {[(p.category, p.status) for p in parts]}, {receipts} receipt(s)")
    print(f"  counts {dict(counts)}; left: {features_left:,} features, {frames_left:,} frames "
          f"(expected {YOUNG_ROWS:,} each)")
    all_batches = [seconds for per in batches.values() for seconds in per]
    deleted_features = counts.get("framefeatures_deleted", 0)
    deleted_frames = counts.get("frame_deleted", 0)
    for name, seconds in sorted(batches.items()):
        rows = counts.get(name, 0)
        print(f"  {name}: {rows:,} rows in {len(seconds)} batches, {sum(seconds):.1f} s = "
              f"{rows / max(sum(seconds), 1e-9):,.0f} rows/s")
    feature_s = sum(batches.get("framefeatures_deleted", []))
    longest = max(all_batches, default=0.0)
    median = sorted(all_batches)[len(all_batches) // 2] if all_batches else 0.0
    print(f"  longest batch transaction: {longest * 1000:.0f} ms (target < {LOCK_TARGET_S * 1000:.0f} ms); "
          f"median {median * 1000:.0f} ms")
    print(f"  pg_locks: {sampler.samples} samples, the purging backend's longest-seen transaction "
          f"{sampler.longest_held_s * 1000:.0f} ms; {len(sampler.waits)} waiting lock(s) seen {sampler.waits[:3]}")
    per_row = feature_s / max(deleted_features, 1)
    base_per_row = base_s / max(base_rows, 1)
    print(f"  per feature row: {per_row * 1e6:.2f} us batched vs {base_per_row * 1e6:.2f} us in one transaction "
          f"(ratio {per_row / base_per_row:.2f})")
    print(f"  whole run: {(deleted_features + deleted_frames) / total_s:,.0f} rows/s over features and frames")
    ok_rows = features_left == YOUNG_ROWS and frames_left == YOUNG_ROWS and deleted_features == ROWS
    print(f"\ntargets: {deleted_features:,} feature rows purged in {feature_s:.1f} s "
          f"({'met' if feature_s < TOTAL_TARGET_S else 'NOT met'}, < {TOTAL_TARGET_S:.0f} s; the whole run with the "
          f"frames {total_s:.1f} s); longest lock {longest:.2f} s "
          f"({'met' if longest < LOCK_TARGET_S else 'NOT met'}); rows right: {ok_rows}; receipts: {receipts}")
    for figure in EXTRA_FIGURES:
        figure(ids)
    # The second figure, in the same run and database: one subject's export of 100,000 feature rows.
    from bench import subject_export_bench

    print("\nsubject export (bench/subject_export_bench.py):")
    subject_export_bench.report(subject_export_bench.run())


if __name__ == "__main__":
    main()
