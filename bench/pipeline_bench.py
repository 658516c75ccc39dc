"""Throughput of frame intake and end-to-end latency of the analysis pipeline on this machine.

python bench/pipeline_bench.py [--intake-frames 2000] [--streams 10] [--fps 5] [--seconds 20] [--json]
python bench/pipeline_bench.py --intake-batches 1 --workers ''    # phase 1 only, one frame per request

Full stack, all on this machine: PostgreSQL (a database of its own, `visage_bench`, migrated here), Redis
(database 11, emptied; VISAGE_BENCH_REDIS picks another), granian with ONE process (4 blocking threads)
serving the API, and real Celery workers (`--pool solo`, one process each) running the real engine.

1. Intake: client threads post 640x480 JPEG frames of a real face (the astronaut) as raw bodies with
   capture tokens, no worker running; frames accepted (202) per second, and the client-side latency.
   Every client keeps its HTTP/1.1 connection open between requests, as a browser's fetch() does; with wrk
   installed, a run driven by wrk follows (a C client, so the client's CPU does not come out of the API's).
2. End to end: `streams` capture sessions each post a frame every 1/fps seconds for `seconds` seconds, with
   one and then two workers; latency from intake (the frame row's received_at) to features written
   (analyzed_at), p50/p95/p99, plus how far the queue fell behind.

Targets: intake >= 300 frames/s on one API process; end-to-end p50 < 60 ms and p99 < 200 ms at 10 streams
of 5 fps. The machine is shared and noisy: the load average before each phase is printed with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("VISAGE_BENCH_DB", "visage_bench")
PG = os.environ.get("VISAGE_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# A Redis database of its own: the bench empties it.
REDIS = os.environ.get("VISAGE_BENCH_REDIS", "redis://127.0.0.1:6379/11")
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.local",
    "DJANGO_DEBUG": "false",
    "DATABASE_URL": f"{PG}/{BENCH_DB}",
    "REDIS_URL": REDIS,
    "CELERY_TASK_ALWAYS_EAGER": "false",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    # The per-session bound (15/s by default) would cap a bench that drives few sessions hard.
    "VISAGE_CAPTURE_MAX_FPS": "100000",
}
os.environ.update(ENV)


def percentiles(samples: list[float]) -> dict[str, float | int]:
    values = np.asarray(samples, dtype=float)
    if not len(values):
        return {"n": 0}
    return {
        "n": int(len(values)),
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "p99": round(float(np.percentile(values, 99)), 1),
        "max": round(float(values.max()), 1),
    }


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def reset_pipeline_tables(*, sessions: bool = True) -> None:
    from django.db import connection

    tables = "faceanalysis_framefeatures, faceanalysis_frame, faceanalysis_facecontext"
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}{', faceanalysis_capturesession' if sessions else ''} CASCADE")
    import redis

    redis.Redis.from_url(REDIS).flushdb()


def make_sessions(count: int) -> list[tuple[str, str]]:
    """`count` consented subjects' capture sessions: (session public id, capture token)."""
    from accounts.models import Organization
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

    organization, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    retention_policy_set(organization=organization, feature_retention_days=30, grant_validity_days=30)
    notice = NoticeVersion.objects.filter(organization=organization, status="published").first()
    if notice is None:
        notice = notice_publish(
            notice=notice_draft_create(
                organization=organization,
                language="en",
                purposes=("face_analysis",),
                controller_name="Bench GmbH",
                controller_contact="bench@example.test",
            )
        )
    campaign, _ = Campaign.objects.get_or_create(
        organization=organization, name="Bench", defaults={"required_purposes": "face_analysis", "status": "running"}
    )
    sessions = []
    for _ in range(count):
        subject = subject_create(organization=organization)
        consent_grant(
            organization=organization, subject=subject, notice=notice, purposes=["face_analysis"], channel="partner_api"
        )
        session, token = capture_session_open(
            organization=organization,
            subject=subject,
            campaign=campaign,
            source="partner",
        )
        sessions.append((str(session.public_id), token))
    return sessions


def test_jpeg() -> bytes:
    """A 640x480 JPEG with one real face (the astronaut, letterboxed), quality 85."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 40, dtype=np.uint8)
    frame[:, 80:560] = face
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return encoded.tobytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Child processes of the bench, stopped on exit whatever happens."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (ROOT / "var" / f"bench-{name}.log").open("wb")
        child = subprocess.Popen(  # noqa: S603 - our own commands
            args, cwd=ROOT, env={**os.environ, **ENV, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def stop_all(self) -> None:
        for child in self.children:
            self.stop(child)


def start_api(
    processes: Processes, threads: int, *, workers: int = 1, name: str = "api"
) -> tuple[subprocess.Popen[bytes], int]:
    """The web server as scripts/fullstack runs it, with `workers` processes (one by default) of `threads`
    blocking threads."""
    port = free_port()
    api = processes.start(
        [str(ROOT / "scripts" / "web"), "--log-level", "warning"],
        name,
        env={"VISAGE_BIND": f"127.0.0.1:{port}", "GRANIAN_WORKERS": str(workers),
             "GRANIAN_BLOCKING_THREADS": str(threads)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return api, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the web server did not come up; see var/bench-{name}.log")


class Client:
    """One HTTP/1.1 connection kept open between requests, as a browser's fetch() or a partner's HTTP session
    keeps it (a new TCP connection per frame would measure the client's handshakes, not intake)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                if response.will_close:
                    self.close()
                return response.status
            except (http.client.HTTPException, ConnectionError):
                self.close()  # the server closed an idle connection: open a new one, once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def post_frame(client: Client, session_id: str, token: str, body: bytes, media_time_ms: int) -> int:
    return client.post(
        f"/api/v1/capture-sessions/{session_id}/frames/",
        body,
        {"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}", "X-Media-Time-Ms": str(media_time_ms)},
    )


def post_batch(client: Client, session_id: str, token: str, body: bytes, count: int) -> int:
    """A multipart request with `count` frames (the small-batch form of intake)."""
    boundary = uuid.uuid4().hex
    parts = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="frame"; filename="f{i}.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n".encode()
            + body
            + b"\r\n"
            for i in range(count)
        )
        + f"--{boundary}--\r\n".encode()
    )
    return client.post(
        f"/api/v1/capture-sessions/{session_id}/frames/",
        parts,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"},
    )


WRK_SCRIPT = """
local tokens, paths, n = {}, {}, 0
for line in io.lines(os.getenv("VISAGE_BENCH_SESSIONS")) do
  local id, token = line:match("([^ ]+) ([^ ]+)")
  paths[#paths + 1] = "/api/v1/capture-sessions/" .. id .. "/frames/"
  tokens[#tokens + 1] = token
end
local file = io.open(os.getenv("VISAGE_BENCH_JPEG"), "rb")
local body = file:read("*all")
file:close()
request = function()
  n = n + 1
  local i = n % #paths + 1
  return wrk.format("POST", paths[i], {["Content-Type"] = "image/jpeg",
    ["Authorization"] = "Bearer " .. tokens[i], ["X-Media-Time-Ms"] = tostring(n)}, body)
end
"""


def bench_intake_wrk(port: int, sessions: list[tuple[str, str]], body: bytes, seconds: int, connections: int) -> dict:
    """Frames accepted per second with wrk (C, keep-alive) as the client, so that the client's own CPU does not
    come out of the API process's share of the two cores. Accepted frames are counted in the database."""
    import tempfile

    from faceanalysis.models import Frame

    with tempfile.TemporaryDirectory() as folder:
        script, listing, jpeg = Path(folder, "intake.lua"), Path(folder, "sessions"), Path(folder, "frame.jpg")
        script.write_text(WRK_SCRIPT)
        listing.write_text("".join(f"{session_id} {token}\n" for session_id, token in sessions))
        jpeg.write_bytes(body)  # the bench's own synthetic test frame, deleted with the folder
        before = Frame.objects.count()
        began = time.perf_counter()
        result = subprocess.run(  # noqa: S603 - our own command
            [shutil.which("wrk") or "wrk", "-t", str(min(2, connections)), "-c", str(connections),
             "-d", f"{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
            env={**os.environ, "VISAGE_BENCH_SESSIONS": str(listing), "VISAGE_BENCH_JPEG": str(jpeg)},
            capture_output=True, text=True, check=True,
        )
        elapsed = time.perf_counter() - began
    accepted = Frame.objects.count() - before
    report = result.stdout
    errors = [line.strip() for line in report.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    latency = {line.split()[0]: line.split()[1] for line in report.splitlines() if line.strip()[:3] in ("50%", "99%")}
    return {
        "client": f"wrk, {connections} keep-alive connections",
        "frames_per_request": 1,
        "seconds": round(elapsed, 2),
        "accepted": accepted,
        "accepted_per_second": round(accepted / elapsed, 1),
        "errors": errors,
        "request_latency": latency,
    }


def bench_intake(
    port: int, sessions: list[tuple[str, str]], body: bytes, frames: int, threads: int, batch: int = 1
) -> dict:
    """Frames accepted per second with `threads` clients posting as fast as they can, `batch` frames a request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(frames // batch))

    def client(index: int) -> None:
        connection = Client(port)
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                connection.close()
                return
            session_id, token = sessions[number % len(sessions)]
            began = time.perf_counter()
            if batch == 1:
                status = post_frame(connection, session_id, token, body, number)
            else:
                status = post_batch(connection, session_id, token, body, batch)
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    warm = Client(port)
    for i in range(20):  # warm caches and the server's first requests
        post_frame(warm, *sessions[i % len(sessions)], body, i)
    warm.close()
    began = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    accepted = statuses.get(202, 0) * batch
    return {
        "client_threads": threads,
        "frames_per_request": batch,
        "frames": frames,
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "accepted_per_second": round(accepted / elapsed, 1),
        "request_ms": percentiles(latencies),
    }


def start_workers(processes: Processes, count: int) -> list[subprocess.Popen[bytes]]:
    from config.celery import app

    children, names = [], []
    for i in range(count):
        name = f"bench-{i}-{uuid.uuid4().hex[:6]}@localhost"
        names.append(name)
        children.append(
            processes.start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "analysis,default",  # as scripts/worker: the trailing aggregate refreshes go to default
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                f"worker-{count}-{i}",
            )
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(destination=names, timeout=0.5)
        if len(replies) == count:
            return children
    raise RuntimeError("workers did not answer; see var/bench-worker-*.log")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def queued_count() -> int:
    from faceanalysis.models import Frame

    return Frame.objects.filter(status=Frame.Status.QUEUED).count()


def bench_end_to_end(
    port: int,
    sessions: list[tuple[str, str]],
    body: bytes,
    fps: float,
    seconds: float,
    workers: int,
    processes: Processes,
) -> dict:
    from faceanalysis.models import Frame, FrameFeatures

    reset_pipeline_tables(sessions=False)
    children = start_workers(processes, workers)
    try:
        # Warm-up: every worker loads its engine on its first frame.
        warm = Client(port)
        for i in range(4 * workers):
            post_frame(warm, *sessions[i % len(sessions)], body, i)
        warm.close()
        wait_until(lambda: queued_count() == 0, 60)
        FrameFeatures.objects.all().delete()
        Frame.objects.all().delete()
        load = load_average()

        sent: list[int] = []
        lock = threading.Lock()
        started = time.monotonic() + 0.5

        def stream(index: int) -> None:
            session_id, token = sessions[index]
            # Streams are spread over the frame interval, as independent cameras would be.
            next_at = started + index * (1.0 / fps) / len(sessions)
            number = 0
            connection = Client(port)
            while next_at < started + seconds:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                status = post_frame(connection, session_id, token, body, int(number * 1000 / fps))
                with lock:
                    sent.append(status)
                number += 1
                next_at += 1.0 / fps

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(sessions))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        behind_at_end = queued_count()
        drained = wait_until(lambda: queued_count() == 0, 120)
        latencies = list(FrameFeatures.objects.values_list("latency_ms", flat=True))
        return {
            "workers": workers,
            "streams": len(sessions),
            "fps_per_stream": fps,
            "seconds": seconds,
            "offered_frames_per_second": round(len(sessions) * fps, 1),
            "accepted": sent.count(202),
            "refused": len(sent) - sent.count(202),
            "analyzed": len(latencies),
            "queued_when_streams_stopped": behind_at_end,
            "drained": drained,
            "load_average_before": load,
            "latency_ms": percentiles(latencies),
        }
    finally:
        for child in children:
            processes.stop(child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intake-frames", type=int, default=2000)
    parser.add_argument("--intake-threads", type=int, default=8)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to run ('' for none)")
    parser.add_argument("--api-threads", type=int, default=4, help="blocking threads of the one web server process")
    parser.add_argument(
        "--intake-batches", default="1,10", help="comma-separated frames per request for phase 1 ('' skips it)"
    )
    parser.add_argument(
        "--wrk-seconds", type=int, default=15, help="seconds of single-frame intake driven by wrk if installed; 0 skips"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    ensure_database()
    reset_pipeline_tables()
    body = test_jpeg()
    processes = Processes()
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "frame": {"width": 640, "height": 480, "jpeg_bytes": len(body)},
        "api": {"processes": 1, "threads": args.api_threads},
    }
    try:
        _, port = start_api(processes, args.api_threads)
        sessions = make_sessions(max(args.streams, 40))
        report["intake"] = [
            {
                "load_average_before": load_average(),
                "client": f"python, {args.intake_threads} threads, keep-alive",
                **bench_intake(port, sessions, body, args.intake_frames, args.intake_threads, batch),
            }
            for batch in (int(n) for n in args.intake_batches.split(",") if n.strip())
        ]
        if args.wrk_seconds and shutil.which("wrk"):
            report["intake"].append(
                {"load_average_before": load_average(),
                 **bench_intake_wrk(port, sessions, body, args.wrk_seconds, args.intake_threads)}
            )
        reset_pipeline_tables(sessions=False)
        report["end_to_end"] = [
            bench_end_to_end(port, sessions[: args.streams], body, args.fps, args.seconds, int(n), processes)
            for n in args.workers.split(",") if n.strip()
        ]
    finally:
        processes.stop_all()
        reset_pipeline_tables()

    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}")
    print(f"frame: 640x480 JPEG, {len(body)} bytes, one real face")
    for intake in report["intake"]:
        print(
            f"\nintake, {intake['frames_per_request']} frame(s) per request (1 granian process with "
            f"{args.api_threads} threads, client {intake['client']}, no worker running, "
            f"load {intake['load_average_before']}):"
        )
        print(
            f"  {intake['accepted_per_second']} frames accepted/s  (target >= 300)  "
            f"{intake.get('statuses') or intake.get('errors') or 'no errors'}"
        )
        print(f"  request ms {intake.get('request_ms') or intake.get('request_latency')}")
    for run in report["end_to_end"]:
        lat = run["latency_ms"]
        print(
            f"\nend to end, {run['workers']} worker(s), {run['streams']} streams x {run['fps_per_stream']} fps "
            f"for {run['seconds']} s (load {run['load_average_before']}):"
        )
        print(
            f"  accepted {run['accepted']}, analysed {run['analyzed']}, queued when streams stopped "
            f"{run['queued_when_streams_stopped']}, drained {run['drained']}"
        )
        print(
            f"  latency ms p50 {lat.get('p50')}  p95 {lat.get('p95')}  p99 {lat.get('p99')}  max {lat.get('max')}"
            "  (targets p50 < 60, p99 < 200)"
        )


if __name__ == "__main__":
    main()
