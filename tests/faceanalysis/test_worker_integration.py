"""Real Celery workers (subprocesses) against real Redis and the pytest PostgreSQL database, the REAL engine:
the upload path, a worker SIGKILLed mid-task, a withdrawal racing 1000 queued frames, TTL expiry; then a scan
of every text/bytea/json column and every Redis key proves no frame bytes remain."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app
from faceanalysis.models import CaptureSession, Frame, FrameFeatures
from faceanalysis.services.intake import IncomingFrame, frame_intake
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session, withdraw

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A real `celery worker` subprocess on the analysis and default queues (as `scripts/worker`), solo pool,
    against the test database."""

    def __init__(self, log_dir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        db = connection.settings_dict
        self.hostname = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = log_dir / f"{self.hostname.split('@')[0]}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            # The worker must see what the test commits: the test database, not the configured one.
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # A killed worker's message comes back after 3 s instead of minutes.
            "CELERY_VISIBILITY_TIMEOUT": "3",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "DJANGO_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "analysis,default", "--pool", "solo",
             "--loglevel", "WARNING", "--hostname", self.hostname, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return self
        self.stop()  # never left behind to take later tests' messages
        raise AssertionError(f"worker did not answer in time:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if hasattr(self, "_log"):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


PIPELINE_KEYS = ("analysis", "analysis_gpu", "unacked", "unacked_index", "unacked_mutex")


def clear_pipeline_keys(client: redis.Redis) -> None:
    """Queued and unacknowledged messages and frames left over from other tests; the rest of the database (other
    apps' keys, the broker's bindings) is left alone."""
    stale = [*PIPELINE_KEYS, *client.scan_iter(match="visage:frame:*"), *client.scan_iter(match="faceanalysis:*")]
    client.delete(*stale)


@pytest.fixture
def clean_redis() -> redis.Redis:
    """The test Redis database without leftover analysis messages or frames."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    clear_pipeline_keys(client)
    return client


@pytest.fixture
def workers(tmp_path: Path, clean_redis) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**kwargs) -> Worker:
        worker = Worker(tmp_path, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition: Callable[[], bool], *, timeout: float = 90, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or condition}")


def unique_jpeg(tag: str) -> bytes:
    """The astronaut as a 640x480 JPEG whose bytes are unique to this test (a JPEG comment)."""
    return astronaut_jpeg(size=(640, 480), comment=f"visage-test-{tag}-{uuid.uuid4().hex}".encode())


def byte_markers(frames: list[bytes]) -> list[bytes]:
    """Fragments that would betray the frames' bytes anywhere: raw slices of the compressed pixel data, their
    hex, and base64 of the frames in all three alignments."""
    markers: list[bytes] = []
    for data in frames:
        for start in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
            chunk = data[start : start + 24]
            markers += [chunk, chunk.hex().encode()]
        for shift in range(3):
            encoded = base64.b64encode(data[shift:])
            markers.append(encoded[len(encoded) // 2 : len(encoded) // 2 + 32])
    return markers


def assert_no_frame_bytes_anywhere(frames: list[bytes], redis_client: redis.Redis, logs: list[str] = ()) -> None:
    """Scan every text, bytea and json column of every table and every Redis key for the frames' bytes."""
    markers = byte_markers(frames)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb')"
        )
        columns = cursor.fetchall()
        assert columns
        scanned = 0
        for table, column, data_type in columns:
            cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')  # noqa: S608
            for (value,) in cursor.fetchall():
                raw = bytes(value) if data_type == "bytea" else str(value).encode()
                scanned += 1
                assert not raw.startswith(b"\xff\xd8\xff"), f"{table}.{column} holds a JPEG"
                hit = next((m for m in markers if m in raw), None)
                assert hit is None, f"{table}.{column} holds frame bytes"
        assert scanned > 0
    keys = list(redis_client.scan_iter(count=1000))
    for key in keys:
        kind = redis_client.type(key).decode()
        if kind == "string":
            values = [redis_client.get(key) or b""]
        elif kind == "hash":
            values = list(redis_client.hgetall(key).values())
        elif kind == "list":
            values = redis_client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(redis_client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in redis_client.zrange(key, 0, -1, withscores=True)]
        else:
            values = []
        for value in values:
            assert not any(m in value for m in markers), f"Redis key {key!r} holds frame bytes"
        assert not key.startswith(b"visage:frame:"), f"frame store key {key!r} outlived its frame"
    for text in logs:
        assert not any(m.decode(errors="ignore") in text for m in markers if m.isascii()), "a log line holds bytes"


def statuses(session: CaptureSession) -> dict[str, int]:
    from faceanalysis.selectors import frame_status_counts

    return frame_status_counts(session=session)


def test_upload_path_real_worker_real_engine_and_no_bytes_remain(org_a, workers, clean_redis) -> None:
    worker = workers()
    session, token = make_capture_session(org_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    sent = [unique_jpeg(f"upload-{i}") for i in range(3)]
    ids = []
    for i, data in enumerate(sent):
        response = client.generic(
            "POST", reverse("api:capture-session-frames", kwargs={"session_id": session.public_id}), data,
            content_type="image/jpeg", HTTP_X_MEDIA_TIME_MS=str(i * 200),
        )
        assert response.status_code == 202, response.content
        ids += response.json()["frame_ids"]

    wait_for(lambda: statuses(session)["analyzed"] == 3, what="3 analysed frames")
    features = list(FrameFeatures.objects.filter(frame__public_id__in=ids))
    assert len(features) == 3
    assert {f.expression for f in features} == {"happy"} and all(f.looking_at_screen for f in features)
    assert all(f.grant_id == session.grant_id and f.model_versions for f in features)
    # Frames that arrive within VISAGE_AGGREGATES_REFRESH_MS of a recount are counted by the trailing refresh,
    # a task the worker runs an interval later.
    wait_for(lambda: CaptureSession.objects.get(pk=session.pk).aggregates.get("frames_analyzed") == 3,
             what="aggregates of all 3 frames")
    detail = client.get(reverse("api:capture-session-detail", kwargs={"session_id": session.public_id})).json()
    assert detail["aggregates"]["frames_analyzed"] == 3 and detail["aggregates"]["smile_share"] == 1.0
    worker.stop()
    assert_no_frame_bytes_anywhere(sent, clean_redis, [worker.log()])


def test_worker_killed_mid_task_is_redelivered_and_the_frame_analysed_exactly_once(
    org_a, workers, clean_redis
) -> None:
    first = workers()
    session, _ = make_capture_session(org_a)
    data = unique_jpeg("kill")
    (frame,) = frame_intake(session=session, frames=[IncomingFrame(data, "image/jpeg")])
    inflight = f"visage:frame:{frame.pk}:inflight"
    # The worker parks the bytes in flight when it takes them, then loads the engine (first frame) and runs it:
    # kill it in that window.
    wait_for(lambda: clean_redis.exists(inflight), interval=0.002, what="the worker to take the frame")
    first.kill()
    frame.refresh_from_db()
    assert frame.status == Frame.Status.QUEUED, "the worker finished before it was killed; nothing was tested"
    assert not FrameFeatures.objects.filter(frame=frame).exists()
    assert clean_redis.exists(inflight), "the bytes must survive the dead worker for the redelivery"

    second = workers()
    wait_for(lambda: Frame.objects.get(pk=frame.pk).status != Frame.Status.QUEUED, what="the redelivered frame")
    frame.refresh_from_db()
    assert frame.status == Frame.Status.ANALYZED
    assert FrameFeatures.objects.filter(frame=frame).count() == 1
    assert FrameFeatures.objects.get(frame=frame).expression == "happy"
    time.sleep(4)  # past another visibility timeout: no second delivery changes anything
    assert FrameFeatures.objects.filter(frame=frame).count() == 1
    second.stop()
    assert_no_frame_bytes_anywhere([data], clean_redis, [first.log(), second.log()])


def test_withdrawal_while_1000_frames_are_queued_lets_none_be_analysed_after_it_commits(
    org_a, workers, clean_redis, settings
) -> None:
    settings.VISAGE_CAPTURE_MAX_FPS = 100_000
    worker = workers()
    session, _ = make_capture_session(org_a)
    data = unique_jpeg("race")
    for _ in range(100):
        frame_intake(session=session, frames=[IncomingFrame(data, "image/jpeg") for _ in range(10)])
    assert Frame.objects.filter(session=session).count() == 1000
    wait_for(lambda: statuses(session)["analyzed"] >= 3, what="some frames analysed before the withdrawal")

    with transaction.atomic():
        withdraw(session.subject)
    committed_at = timezone.now()  # the cascade ran on commit, in this process

    wait_for(lambda: statuses(session)["queued"] == 0, what="every frame finished")
    counts = statuses(session)
    assert counts["analyzed"] + counts["dropped"] == 1000, counts
    assert counts["dropped"] > 0
    # Nothing derived survives the withdrawal, and nothing was analysed after it committed.
    assert not FrameFeatures.objects.filter(subject=session.subject).exists()
    late = Frame.objects.filter(session=session, status=Frame.Status.ANALYZED, finished_at__gt=committed_at)
    assert not late.exists()
    assert set(Frame.objects.filter(session=session, status=Frame.Status.DROPPED).values_list("reason", flat=True)) == {
        "consent_withdrawn"}
    session.refresh_from_db()
    assert session.end_reason == CaptureSession.EndReason.CONSENT_WITHDRAWN
    wait_for(lambda: clean_redis.llen("analysis") == 0, what="the queue to drain")
    worker.stop()
    assert_no_frame_bytes_anywhere([data], clean_redis, [worker.log()])


def test_frame_nobody_takes_before_its_ttl_is_gone_and_counted_as_expired(
    org_a, workers, clean_redis, settings
) -> None:
    settings.VISAGE_FRAME_TTL_SECONDS = 1
    from faceanalysis import store

    store._store_for.cache_clear()  # the store reads its TTL when created
    try:
        session, _ = make_capture_session(org_a)
        data = unique_jpeg("ttl")
        (frame,) = frame_intake(session=session, frames=[IncomingFrame(data, "image/jpeg")])
        time.sleep(1.5)  # no worker runs: the bytes expire in Redis
        assert not clean_redis.exists(f"visage:frame:{frame.pk}")
        worker = workers()
        wait_for(lambda: Frame.objects.get(pk=frame.pk).status != Frame.Status.QUEUED, what="the late delivery")
        frame.refresh_from_db()
        assert (frame.status, frame.reason) == (Frame.Status.EXPIRED, "expired")
        assert not FrameFeatures.objects.filter(frame=frame).exists()
        worker.stop()
        assert_no_frame_bytes_anywhere([data], clean_redis, [worker.log()])
    finally:
        store._store_for.cache_clear()


def test_the_scan_finds_frame_bytes_where_they_are(org_a, clean_redis) -> None:
    """The negative control: bytes left in Redis or a text column are found, so the scans above mean something."""
    data = unique_jpeg("control")
    clean_redis.set("stray", b"prefix" + data)
    with pytest.raises(AssertionError, match="Redis key"):
        assert_no_frame_bytes_anywhere([data], clean_redis)
    clean_redis.delete("stray")
    session, _ = make_capture_session(org_a)
    CaptureSession.objects.filter(pk=session.pk).update(media_ref=base64.b64encode(data[:150]).decode())
    with pytest.raises(AssertionError, match="media_ref"):
        assert_no_frame_bytes_anywhere([data[:150]], clean_redis)


def test_analysis_worker_refuses_to_start_without_its_models(tmp_path: Path) -> None:
    worker = Worker(tmp_path, extra_env={"VISAGE_MODELS_DIR": str(tmp_path / "no-models")})
    with worker.log_path.open("wb") as log:
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "analysis,default", "--pool", "solo",
             "--loglevel", "WARNING", "--hostname", worker.hostname, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=worker.env, stdout=log, stderr=subprocess.STDOUT, timeout=120,
        )
    assert result.returncode != 0
    assert "Refusing to start an analysis worker" in worker.log()
    assert "detector" in worker.log() and "landmarker" in worker.log()
