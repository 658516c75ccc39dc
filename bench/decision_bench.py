"""Speed of personalization decisions on this machine: rules evaluated in-process, and the decision endpoint
under granian at a fixed request rate, against a trivial endpoint measured the same way in the same run.

python bench/decision_bench.py [--rate 300] [--seconds 20] [--subjects 200] [--json]

Full stack, all on this machine: PostgreSQL (a database of its own, `visage_bench_decisions`, migrated here),
Redis (database 12, emptied; VISAGE_BENCH_REDIS picks another) as the cache of visitors' face signals, and
granian as scripts/web runs it, with one blocking thread per process (GRANIAN_BLOCKING_THREADS=1; 2
processes). wrk drives the load (apt-get install wrk): 10 keep-alive connections, each pacing itself so that
together they ask about `rate` requests a second.

The campaign: 10 variants and 50 rules, every one tried for every request (the only rule that matches is the
last): 20 on face signals (smile share, expression probabilities, attention share, over three windows), 20 on
the request (country, language, UTM, referrer, local hour), 10 mixing consent, any/all/not. Every subject has
consented to face analysis and personalization and has 30 analysed frames from the last minutes, so each
decision asks the guard, reads the subject's face signals from the cache and writes one decision-log row.

Targets (issue #13): the decision endpoint's p99 under 15 ms at 300 requests/s on this 2-core machine; 50
rules in-process p50 under 0.5 ms; the web process's peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "visage_bench_decisions")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("VISAGE_BENCH_REDIS", "redis://127.0.0.1:6379/12")
os.environ.update(
    {"VISAGE_BENCH_DB": BENCH_DB, "VISAGE_BENCH_REDIS": REDIS}  # pipeline_bench reads these at import
)

from bench.pipeline_bench import Processes, ensure_database, load_average, start_api  # noqa: E402

# One partner key asks for every decision: the decisions' own default rate limits (API_DECISION_THROTTLE_RATE,
# 18000/min per key and per organization) are on and counted, as in production.

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _face(field: str, op: str, value: object, window: int) -> dict:
    return {"field": field, "op": op, "value": value, "window_seconds": window, "min_frames": 3}


def bench_rules() -> list[dict]:
    """50 condition trees, none matching a bench visitor but the last (so every request tries all 50)."""
    windows = (300, 900, 3600)
    rules: list[dict] = []
    for i in range(20):  # face signals, each out of reach of the bench's frames
        window = windows[i % 3]
        rules.append([
            _face("face.smile_share", "gte", 0.99, window),
            {"all": [_face("face.expression.happy", "gte", 0.995, window),
                     _face("face.attention_share", "gte", 0.5, window)]},
            {"any": [_face("face.expression.sad", "gt", 0.9, window),
                     _face("face.expression.angry", "gt", 0.9, window)]},
            _face("face.attention_share", "lt", 0.01, window),
        ][i % 4])
    for i in range(20):  # the request
        rules.append([
            {"field": "request.country", "op": "in", "value": ["XX", "YY", f"Z{chr(65 + i % 10)}"]},
            {"field": "request.language", "op": "eq", "value": "fi"},
            {"field": "request.utm_source", "op": "eq", "value": f"newsletter-{i}"},
            {"field": "request.referrer_host", "op": "ends_with", "value": "nowhere.example"},
            {"all": [{"field": "request.local_hour", "op": "between", "value": [3, 4]},
                     {"field": "request.device", "op": "eq", "value": "mobile"}]},
        ][i % 5])
    for i in range(9):  # consent and groups
        rules.append([
            {"field": "consent.partner_sharing", "op": "eq", "value": "active"},
            {"not": {"field": "consent.personalization", "op": "eq", "value": "active"}},
            {"all": [{"field": "request.device", "op": "eq", "value": "desktop"},
                     {"not": {"field": "request.returning", "op": "eq", "value": True}},
                     {"field": "request.country", "op": "eq", "value": "XX"}]},
        ][i % 3])
    rules.append({"all": [{"field": "request.device", "op": "eq", "value": "desktop"},
                          {"field": "consent.personalization", "op": "eq", "value": "active"}]})
    return rules


def make_campaign(subject_count: int):
    """The bench organization's campaign (10 variants, 50 rules), its consenting subjects with fresh frames, and
    a partner key."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Organization
    from accounts.services import api_key_create
    from campaigns.content import rule_save, variant_save
    from campaigns.models import Campaign
    from campaigns.services import capture_session_open
    from consent.models import NoticeVersion
    from consent.services import (
        consent_grant,
        notice_draft_create,
        notice_publish,
        retention_policy_set,
        subject_create,
    )
    from faceanalysis.models import Frame, FrameFeatures

    organization, _ = Organization.objects.get_or_create(slug="bench-decisions", defaults={"name": "Bench"})
    retention_policy_set(organization=organization, feature_retention_days=30, grant_validity_days=30)
    purposes = ("face_analysis", "personalization")
    notice = NoticeVersion.objects.filter(organization=organization, status="published").first() or notice_publish(
        notice=notice_draft_create(
            organization=organization, language="en", purposes=purposes, controller_name="Bench GmbH",
            controller_contact="bench@example.test",
        )
    )
    campaign = Campaign.objects.create(
        organization=organization, name=f"Bench {secrets.token_hex(3)}", required_purposes="face_analysis",
        optional_purposes="personalization", status=Campaign.Status.RUNNING,
    )
    variants = [
        variant_save(campaign=campaign, variant=None, data={
            "key": f"v{i}", "name": f"Variant {i}", "headline": f"Headline {i}", "body": "Body " * 20,
            "cta_text": "Buy", "cta_url": "https://shop.example/buy", "is_default": i == 0,
        })
        for i in range(10)
    ]
    for i, tree in enumerate(bench_rules()):
        rule_save(campaign=campaign, rule=None, data={
            "name": f"Rule {i}", "priority": i, "condition": tree, "variant": variants[1 + i % 9],
        })
    subjects = []
    now = timezone.now()
    for _ in range(subject_count):
        subject = subject_create(organization=organization)
        consent_grant(organization=organization, subject=subject, notice=notice, purposes=list(purposes),
                      channel="partner_api")
        session, _ = capture_session_open(organization=organization, subject=subject, campaign=campaign,
                                          source="partner")
        common = {"organization_id": organization.pk, "session": session, "subject_id": subject.pk,
                  "grant": session.grant}
        for k in range(30):
            at = now - timedelta(seconds=5 * k)
            frame = Frame.objects.create(**common, content_type="image/jpeg", byte_size=1000, width=64, height=64,
                                         queue="analysis", status=Frame.Status.ANALYZED, received_at=at,
                                         finished_at=at)
            FrameFeatures.objects.create(
                **common, frame=frame, face_count=1, quality_ok=True, quality_reasons=[], attention_score=0.8,
                looking_at_screen=k % 3 != 0, smile=0.6 if k % 2 else 0.1, expression="happy" if k % 2 else "neutral",
                expression_confidence=0.7,
                faces=[{"expression": {"probabilities": {"happy": 0.6, "neutral": 0.3, "sad": 0.1}, "top": "happy",
                                       "confidence": 0.7}}],
                received_at=at, analyzed_at=at, latency_ms=20.0,
            )
        subjects.append(str(subject.public_id))
    _, key = api_key_create(organization=organization, name="bench", scopes=("read", "write"))
    return campaign, subjects, key


def bench_in_process(campaign, subject_public_id: str, runs: int) -> dict:
    """50 rules evaluated against a real subject's context (consent from the guard, face signals from the
    cache), without HTTP or the log: the decision's own cost."""
    from django.utils import timezone

    from campaigns.decisions import decision_context, decision_evaluate
    from campaigns.request_context import request_attributes
    from consent.selectors import subject_get

    subject = subject_get(organization=campaign.organization, public_id=subject_public_id)
    attributes = request_attributes(user_agent=USER_AGENT, language="en", country="DE", now=timezone.now())
    context = decision_context(campaign=campaign, subject=subject, attributes=attributes)
    evaluation = decision_evaluate(campaign=campaign, context=context)
    assert evaluation.reason == "rule" and len(evaluation.trace) == 50, evaluation
    samples, context_samples = [], []
    for _ in range(runs):
        began = time.perf_counter()
        decision_evaluate(campaign=campaign, context=context)
        samples.append((time.perf_counter() - began) * 1000)
    for _ in range(min(runs, 300)):
        began = time.perf_counter()
        decision_context(campaign=campaign, subject=subject, attributes=attributes)
        context_samples.append((time.perf_counter() - began) * 1000)
    return {"rules": 50, "evaluate_ms": percentiles(samples), "context_ms": percentiles(context_samples)}


def percentiles(samples: list[float]) -> dict:
    values = np.asarray(samples, dtype=float)
    return {"n": len(values), "p50": round(float(np.percentile(values, 50)), 3),
            "p99": round(float(np.percentile(values, 99)), 3)}


WRK_SCRIPT = """
local bodies, n = {}, 0
for line in io.lines(os.getenv("VISAGE_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local pause = tonumber(os.getenv("VISAGE_BENCH_PAUSE_MS"))
local path, key = os.getenv("VISAGE_BENCH_PATH"), os.getenv("VISAGE_BENCH_KEY")
request = function()
  n = n + 1
  if path == "/healthz" then return wrk.format("GET", path) end
  return wrk.format("POST", path, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key,
    ["User-Agent"] = os.getenv("VISAGE_BENCH_UA")}, bodies[n % #bodies + 1])
end
delay = function() return pause end
"""


def run_wrk(
    port: int, path: str, bodies: list[str], key: str, rate: int, seconds: int, connections: int,
    latency_ms: float = 0.0,
) -> dict:
    """wrk at about `rate` requests/s in all: each connection waits connections/rate between one answer and its
    next request, less `latency_ms` (the answer's own time, measured in the warm-up), so that the waits and the
    answers together make the rate."""
    with tempfile.TemporaryDirectory() as folder:
        script, listing = Path(folder, "decide.lua"), Path(folder, "bodies")
        script.write_text(WRK_SCRIPT)
        listing.write_text("".join(body + "\n" for body in bodies))
        pause_ms = max(0.0, 1000 * connections / rate - latency_ms)
        env = {**os.environ, "VISAGE_BENCH_BODIES": str(listing), "VISAGE_BENCH_PATH": path, "VISAGE_BENCH_KEY": key,
               "VISAGE_BENCH_UA": USER_AGENT, "VISAGE_BENCH_PAUSE_MS": str(pause_ms)}
        result = subprocess.run(  # noqa: S603 - our own command
            [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
             "-s", str(script), f"http://127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, check=True,
        )
    report = result.stdout
    latency = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            latency[parts[0]] = _ms(parts[1])
    rate_line = next((line for line in report.splitlines() if line.startswith("Requests/sec")), "0 0")
    errors = [line.strip() for line in report.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    return {"path": path, "requests_per_second": float(rate_line.split()[-1]), "latency_ms": latency,
            "errors": errors}


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 2)
    return float(text)


def peak_memory_mb(root_pid: int) -> float:
    """The largest peak resident set (VmHWM) among the web server's processes (its main and workers)."""
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return round(max(peaks, default=0.0), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--web-workers", type=int, default=2, help="granian processes (scripts/web's default: 2)")
    parser.add_argument("--web-threads", type=int, default=1,
                        help="blocking threads per process (1: two processes of one thread each beat four threads "
                        "contending for one process's GIL on this CPU-bound endpoint)")
    parser.add_argument("--runs", type=int, default=3000, help="in-process evaluations")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    ensure_database()
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    from campaigns.models import Decision

    campaign, subjects, key = make_campaign(args.subjects)
    report: dict = {"load_average": load_average(), "in_process": bench_in_process(campaign, subjects[0], args.runs)}
    bodies = [
        json.dumps({"campaign": campaign.public_id, "visitor_id": f"bench-visitor-{i:06d}-{secrets.token_hex(4)}",
                    "subject": subject, "context": {"language": "en", "country": "DE", "timezone": "Europe/Berlin",
                                                    "url": "https://shop.example/?utm_source=bench"}})
        for i, subject in enumerate(subjects)
    ]
    processes = Processes()
    try:
        api, port = start_api(processes, args.web_threads, workers=args.web_workers, name="decisions-web")
        warm = run_wrk(port, "/api/v1/decisions/", bodies, key, args.rate, 5, args.connections)  # caches, pools
        before = Decision.objects.filter(campaign=campaign).count()
        report["baseline"] = run_wrk(port, "/healthz", bodies, key, args.rate, args.seconds, args.connections)
        report["decisions"] = run_wrk(port, "/api/v1/decisions/", bodies, key, args.rate, args.seconds,
                                      args.connections, latency_ms=warm["latency_ms"].get("50%", 0.0))
        report["decision_log_rows"] = Decision.objects.filter(campaign=campaign).count() - before
        report["web_peak_memory_mb"] = peak_memory_mb(api.pid)
    finally:
        processes.stop_all()
    base, dec = report["baseline"]["latency_ms"], report["decisions"]["latency_ms"]
    report["p99_ratio_to_baseline"] = round(dec["99%"] / base["99%"], 2) if base.get("99%") else None
    report["targets"] = {
        "endpoint_p99_under_15_ms_at_rate": dec.get("99%", 1e9) < 15 and not report["decisions"]["errors"],
        "rate_reached": report["decisions"]["requests_per_second"] >= 0.95 * args.rate,
        "in_process_p50_under_0_5_ms": report["in_process"]["evaluate_ms"]["p50"] < 0.5,
        "web_peak_under_300_mb": report["web_peak_memory_mb"] < 300,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    ip = report["in_process"]
    print(f"load average before: {report['load_average']}")
    print(f"in-process, 50 rules: evaluate p50 {ip['evaluate_ms']['p50']} ms, p99 {ip['evaluate_ms']['p99']} ms; "
          f"context (guard + cached face signals) p50 {ip['context_ms']['p50']} ms")
    for name in ("baseline", "decisions"):
        run = report[name]
        print(f"{name:>9} {run['path']}: {run['requests_per_second']} req/s, latency {run['latency_ms']} "
              f"{' '.join(run['errors'])}")
    print(f"p99 ratio decisions/baseline: {report['p99_ratio_to_baseline']}; decision-log rows written: "
          f"{report['decision_log_rows']}; web peak memory {report['web_peak_memory_mb']} MB")
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in report["targets"].items()))


if __name__ == "__main__":
    main()
