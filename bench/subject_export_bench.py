"""What a data subject's export costs on PostgreSQL (issue 16): one subject with 100,000 frames' features (and some
of everything else: grants and their ledger, capture sessions with aggregates, frames, a face context, decisions,
events, segment memberships), exported end to end through the real "my data" view (Django's test client: URL
routing, middleware, the view, the StreamingHttpResponse consumed chunk by chunk).

python bench/subject_export_bench.py [--features 100000] [--runs 5] [--regenerate]

A database of its own (`export_bench`, VISAGE_BENCH_DB picks another), migrated here; the rows are written once
and kept between runs (--regenerate writes them anew). Prints the time to the last byte over the runs (median,
p95, max) and the document's size; the peak of Python's allocations (tracemalloc) in one more run, as tracemalloc
slows Python down several times; the baseline, in the same run: every table's rows of the subject read with values()
into lists and the whole document dumped at once with json.dumps, its time and peak, and the ratios. On PostgreSQL
the database writes each row's JSON (consent.data_export.export_rows). The issue's target: under 3 s, streamed
rather than built in memory.

`run(features=..., runs=...)` does the same in an already set-up Django (bench/retention_bench.py calls it) and
returns the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as stats
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "export_bench")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
ORGANIZATION = "Export bench"
TARGET_S = 3.0
BATCH = 5000
ANCHOR = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def generate(features: int) -> Any:
    """The organization and its one subject with a long history; returns the subject."""
    from accounts.models import Organization
    from campaigns.models import Campaign, Decision, Event, Variant
    from consent.models import NoticeVersion, Purpose
    from consent.services import (
        consent_grant,
        consent_withdraw,
        notice_draft_create,
        notice_publish,
        retention_policy_set,
        subject_get_or_create_for_partner,
    )
    from faceanalysis.models import CaptureSession, FaceContext, Frame, FrameFeatures
    from segments.models import Segment, SegmentMembership

    organization = Organization.objects.create(name=ORGANIZATION, slug=f"export-bench-{int(time.time())}")
    retention_policy_set(organization=organization, feature_retention_days=365, grant_validity_days=365)
    purposes = [Purpose.FACE_ANALYSIS, Purpose.PERSONALIZATION, Purpose.PARTNER_SHARING]
    notice = notice_publish(notice=notice_draft_create(
        organization=organization, language="en", purposes=purposes, controller_name="Export Bench GmbH",
        controller_contact="privacy@example.test"))
    assert notice.status == NoticeVersion.Status.PUBLISHED
    subject, _ = subject_get_or_create_for_partner(organization=organization, partner_user_id="bench-user")
    evidence = {"ip_prefix": "203.0.113.0/24", "user_agent_class": "browser/desktop"}
    for _ in range(3):  # a history of consent: granted, withdrawn, granted again
        consent_grant(organization=organization, subject=subject, notice=notice, purposes=purposes,
                      channel="partner_api", evidence=evidence)
        consent_withdraw(organization=organization, subject=subject, purposes=[Purpose.PERSONALIZATION],
                         channel="partner_api")
    grants = consent_grant(organization=organization, subject=subject, notice=notice, purposes=purposes,
                           channel="partner_api", evidence=evidence)
    face_grant = next(g for g in grants if g.purpose == Purpose.FACE_ANALYSIS)
    campaign = Campaign.objects.create(organization=organization, name="Bench campaign", status="running",
                                       required_purposes="face_analysis")
    variant = Variant.objects.create(organization=organization, campaign=campaign, key="standard", name="Standard",
                                     is_default=True)
    sessions = [
        CaptureSession.objects.create(
            organization=organization, subject=subject, campaign=campaign, grant=face_grant, purposes="face_analysis",
            source=CaptureSession.Source.BROWSER_STREAM, aggregates={"frames": features // 3, "smile_mean": 0.4},
        ) for _ in range(3)
    ]
    common = {"organization": organization, "subject": subject, "grant": face_grant, "status": "analyzed",
              "content_type": "image/jpeg", "byte_size": 20000, "width": 640, "height": 480, "queue": "analysis"}
    faces = [{"box": [120.0, 80.0, 220.0, 240.0], "detection_score": 0.97, "smile": 0.4, "expression": "happy"}]
    for start in range(0, features, BATCH):
        count = min(BATCH, features - start)
        at = [ANCHOR - timedelta(seconds=features - start - i) for i in range(count)]
        frames = Frame.objects.bulk_create([
            Frame(**common, session=sessions[(start + i) % 3], received_at=at[i], finished_at=at[i],
                  media_time_ms=i * 200) for i in range(count)])
        FrameFeatures.objects.bulk_create([
            FrameFeatures(
                organization=organization, frame=frame, session=frame.session, subject=subject, grant=face_grant,
                media_time_ms=frame.media_time_ms, face_count=1, quality_ok=True, quality_reasons=[],
                attention_score=0.8, looking_at_screen=True, eyes_open=True, smile=0.4, expression="happy",
                expression_confidence=0.7, age_years=34.0, gender="female", gender_confidence=0.8, faces=faces,
                model_versions=[{"name": "face_landmarker", "version": "0.10"}], received_at=frame.received_at,
                analyzed_at=frame.received_at, latency_ms=40.0,
            ) for frame in frames])
    FaceContext.objects.create(organization=organization, subject=subject, campaign=campaign, session=sessions[-1],
                               grant=face_grant, features={"latest": {"face_detected": True, "smile": 0.4}})
    for n in range(200):
        decision = Decision.objects.create(organization=organization, campaign=campaign, variant=variant,
                                           subject=subject, visitor_id=f"bench-visitor-{n:06d}", reason="default",
                                           channel="api")
        Event.objects.create(organization=organization, decision=decision, campaign=campaign, variant=variant,
                             subject=subject, kind="impression", client_event_id=f"bench-{n}",
                             occurred_at=ANCHOR, received_at=ANCHOR)
    for key in ("smilers", "attentive", "returning"):
        segment = Segment.objects.create(organization=organization, key=key, name=key.title(), kind="dynamic",
                                         definition={"field": "subject.partner_linked", "op": "eq", "value": True})
        SegmentMembership.objects.create(organization=organization, segment=segment, subject=subject,
                                         entered_at=ANCHOR - timedelta(days=3))
    return subject


def _bench_subject(features: int, *, regenerate: bool) -> Any:
    from consent.models import Subject
    from faceanalysis.models import FrameFeatures

    subject = (Subject.objects.filter(organization__name=ORGANIZATION, erased_at__isnull=True)
               .select_related("organization").order_by("-pk").first())
    if regenerate or subject is None or FrameFeatures.objects.filter(subject=subject).count() != features:
        print(f"generating one subject with {features:,} frames' features (kept for later runs)", flush=True)
        started = time.perf_counter()
        subject = generate(features)
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    return subject


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _streamed(token: str, *, trace: bool = False) -> tuple[float, int, int]:
    """One download through the view: seconds to the last byte, bytes, and with `trace` the peak of Python's
    allocations (tracemalloc slows Python down several times, so timed runs go without it)."""
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    response = client.post(f"/consent/my-data/{token}/export/")
    assert response.status_code == 200 and response.streaming, response.status_code
    size = 0
    for chunk in response.streaming_content:
        size += len(chunk)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return elapsed, size, peak


def _in_memory(subject: Any, *, trace: bool = False) -> tuple[float, int, int, dict]:
    """The baseline, a plain implementation: every table's rows of the subject read with values() into lists and
    the whole document dumped at once with json.dumps."""
    from django.apps import apps
    from django.core.serializers.json import DjangoJSONEncoder

    from consent.data_export import EXPORT_FORMAT, LEDGER_FIELDS, subject_ledger_entries
    from consent.models import Subject
    from consent.purging import purgers

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    sections: dict[str, list] = {}
    for purger in purgers():
        for label in purger.models:
            model = apps.get_model(label)
            rows = model.objects.filter(organization_id=subject.organization_id)
            rows = rows.filter(pk=subject.pk) if model is Subject else rows.filter(subject_id=subject.pk)
            sections[label] = list(rows.order_by("pk").values())
    history = list(subject_ledger_entries(organization=subject.organization, subject=subject, receipts=False)
                   .values(*LEDGER_FIELDS))
    document = {"format": EXPORT_FORMAT, "subject": {"id": str(subject.public_id)}, "sections": sections,
                "consent_history": history}
    text = json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return elapsed, len(text.encode()), peak, {label: len(rows) for label, rows in sections.items()}


def run(*, features: int = 100_000, runs: int = 5, regenerate: bool = False, memory: bool = True) -> dict[str, Any]:
    """The bench in an already set-up Django: figures of the streamed export and of the in-memory baseline (their
    peaks traced in one more run each, unless `memory` is False)."""
    from consent.services import subject_access_token_rotate

    subject = _bench_subject(features, regenerate=regenerate)
    token = subject_access_token_rotate(subject=subject)
    _streamed(token)  # warm: connections, templates, the first query plans
    streamed = [_streamed(token) for _ in range(runs)]
    baseline = [_in_memory(subject) for _ in range(max(1, runs // 2))]
    stream_peak = _streamed(token, trace=True)[2] if memory else 0
    base_peak = _in_memory(subject, trace=True)[2] if memory else 0
    times = [s[0] for s in streamed]
    base_time = stats.median(b[0] for b in baseline)
    return {
        "features": features, "runs": runs, "bytes": streamed[-1][1], "rows": baseline[-1][3],
        "stream_median_s": stats.median(times), "stream_p95_s": _percentile(times, 0.95),
        "stream_max_s": max(times), "stream_peak_mb": stream_peak / 2**20,
        "baseline_median_s": base_time, "baseline_peak_mb": base_peak / 2**20,
        "time_ratio": stats.median(times) / base_time, "peak_ratio": stream_peak / base_peak if base_peak else 0.0,
        "target_s": TARGET_S, "target_met": max(times) < TARGET_S,
    }


def report(figures: dict[str, Any]) -> None:
    rows = ", ".join(f"{label} {count:,}" for label, count in figures["rows"].items() if count)
    print(f"one subject: {rows}")
    print(f"document: {figures['bytes'] / 2**20:.1f} MB")
    print(f"streamed through the view ({figures['runs']} runs): median {figures['stream_median_s']:.2f} s, "
          f"p95 {figures['stream_p95_s']:.2f} s, max {figures['stream_max_s']:.2f} s; "
          f"peak Python allocations {figures['stream_peak_mb']:.1f} MB")
    print(f"baseline, built in memory with json.dumps: median {figures['baseline_median_s']:.2f} s, "
          f"peak {figures['baseline_peak_mb']:.1f} MB")
    print(f"ratios streamed / baseline: time {figures['time_ratio']:.2f}, peak memory {figures['peak_ratio']:.3f}")
    verdict = "met" if figures["target_met"] else "NOT met"
    print(f"target: every run under {figures['target_s']:.0f} s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true", help="write the rows anew")
    args = parser.parse_args()
    from bench import bench_db

    bench_db.bench_environment(PG, BENCH_DB, redis_db=13)
    bench_db.ensure_database(PG, BENCH_DB, fresh=args.regenerate)
    report(run(features=args.features, runs=args.runs, regenerate=args.regenerate))


if __name__ == "__main__":
    main()
