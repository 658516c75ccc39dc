"""The embedded default under racing writes: the demo's own server (runserver, SQLite in a file, tasks in-process,
the real engine) takes frame streams while consent is withdrawn and sessions are ended. No answer is a 500; every
answer is 202, 403, 409 or a 503 in the error shape; every accepted frame is analysed or dropped for consent."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.faceanalysis.factories import astronaut_jpeg
from tests.web_server import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = 4

# Run by `manage.py shell` in the server's environment: consented subjects with open browser sessions, and a
# partner key, printed as JSON.
SETUP = """
import json
from accounts.services import api_key_create, organization_create
from tests.faceanalysis.factories import make_capture_session
org = organization_create(name="Race", slug="race")
sessions = [make_capture_session(org) for _ in range({n})]
print(json.dumps({{
    "key": api_key_create(organization=org, name="race")[1],
    "sessions": [{{"id": str(s.public_id), "subject": str(s.subject.public_id), "token": t}} for s, t in sessions],
}}))
"""


class Server(NamedTuple):
    port: int
    database: Path
    setup: dict[str, Any]
    log: Path


def _embedded_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",  # what scripts/demo runs
        "DATABASE_URL": f"sqlite:///{database}",
        "VISAGE_CAPTURE_MAX_FPS": "1000",  # the race is about the database, not the frame-rate bound
        "PYTHONPATH": str(ROOT),
    }


@contextlib.contextmanager
def _serve(tmp_path: Path, **extra_env: str) -> Iterator[Server]:
    """Migrate a fresh SQLite file, make the subjects and sessions, and run the demo's server on it."""
    database = tmp_path / "visage.sqlite3"
    env = {**_embedded_env(database), **extra_env}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=180)
    made = subprocess.run(
        [*manage, "shell", "-c", SETUP.format(n=SUBJECTS)], cwd=ROOT, env=env, check=True, timeout=120,
        capture_output=True, text=True,
    )
    setup = json.loads(made.stdout.strip().splitlines()[-1])
    port = free_port()
    log_path = tmp_path / "server.log"
    command = [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"]
    with running_server(command, port=port, log_path=log_path, env=env):
        yield Server(port, database, setup, log_path)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    with _serve(tmp_path) as server:
        yield server


def _request(
    port: int, method: str, path: str, *, body: bytes = b"", headers: dict[str, str], answer: dict | None = None
) -> tuple[int, Any]:
    """Status and JSON body (the first bytes of any other body); `answer` gets the response headers."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        client.request(method, path, body=body, headers=headers)
        response = client.getresponse()
        raw = response.read()
        if answer is not None:
            answer.update(response.getheaders())
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw[:300]
    finally:
        client.close()


def test_frames_racing_withdrawals_and_ends_on_sqlite_never_answer_500_or_lose_a_frame(
    sqlite_server: Server,
) -> None:
    port, setup = sqlite_server.port, sqlite_server.setup
    frame = astronaut_jpeg(size=(320, 240))
    answers: list[tuple[str, int, Any]] = []
    accepted: list[str] = []
    lock = threading.Lock()
    sessions = setup["sessions"]
    # (seconds after the start, what, whose session): one session is withdrawn and ended at the same moment.
    interruptions = [(0.3, "withdraw", 0), (0.3, "end", 0), (0.7, "end", 1), (1.1, "withdraw", 2),
                     (1.5, "end", 3), (1.5, "withdraw", 3)]
    start = threading.Barrier(SUBJECTS + len(interruptions))

    def record(kind: str, status: int, body: Any) -> None:
        with lock:
            answers.append((kind, status, body))
            if kind == "frame" and status == 202:
                accepted.extend(body["frame_ids"])

    def stream(session: dict[str, str]) -> None:
        headers = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {session['token']}"}
        start.wait(timeout=60)
        for _ in range(24):
            status, body = _request(port, "POST", f"/api/v1/capture-sessions/{session['id']}/frames/", body=frame,
                                    headers=headers)
            record("frame", status, body)
            if status in (403, 409):
                break

    def interrupt(delay: float, kind: str, session: dict[str, str]) -> None:
        start.wait(timeout=60)
        time.sleep(delay)  # while frames of every session are in flight
        if kind == "withdraw":
            status, body = _request(
                port, "POST", f"/api/v1/consent/subjects/{session['subject']}/withdraw/", body=b"{}",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {setup['key']}"},
            )
            record("withdraw", status, body)
        else:
            status, body = _request(port, "POST", f"/api/v1/capture-sessions/{session['id']}/end/",
                                    headers={"Authorization": f"Bearer {session['token']}"})
            record("end", status, body)

    threads = [threading.Thread(target=stream, args=(s,)) for s in sessions]
    threads += [threading.Thread(target=interrupt, args=(delay, kind, sessions[i])) for delay, kind, i in interruptions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    log = sqlite_server.log.read_text(errors="replace")

    assert [a for a in answers if a[1] >= 500 and a[1] != 503] == [], log[-4000:]
    for kind, status, body in answers:
        expected = {"frame": {202, 403, 409, 503}, "withdraw": {200, 503}, "end": {200, 503}}[kind]
        assert status in expected, (kind, status, body)
        if status == 503:
            assert body["error"]["code"] == "database_busy" and body["error"]["details"]["retry_after_seconds"] >= 1
    done = sorted(kind for kind, status, _ in answers if kind != "frame" and status == 200)
    assert done == sorted(kind for _, kind, _ in interruptions), answers
    assert accepted, "no frame was accepted at all"
    assert "database is locked" not in log and "Retry in" not in log, log[-4000:]

    db = sqlite3.connect(sqlite_server.database)
    try:
        placeholders = ",".join("?" * len(accepted))
        rows = db.execute(
            f"SELECT status, reason, COUNT(*) FROM faceanalysis_frame WHERE replace(public_id, '-', '') IN"  # noqa: S608
            f" ({placeholders}) GROUP BY status, reason", [a.replace("-", "") for a in accepted]
        ).fetchall()
    finally:
        db.close()
    outcomes = {(status, reason): n for status, reason, n in rows}
    assert sum(outcomes.values()) == len(accepted), outcomes
    assert set(outcomes) <= {("analyzed", ""), ("dropped", "consent_withdrawn")}, outcomes
    assert ("dropped", "consent_withdrawn") in outcomes or ("analyzed", "") in outcomes


def test_a_write_lock_held_past_the_busy_timeout_is_a_503_with_retry_after_then_the_frame_goes_in(
    tmp_path: Path,
) -> None:
    """Another writer keeps SQLite's lock longer than the server waits: the API answers 503 database_busy in
    the error shape, never a 500, and takes the frame once the lock is free."""
    with _serve(tmp_path, VISAGE_SQLITE_TIMEOUT_SECONDS="0.5") as server:
        session = server.setup["sessions"][0]
        path = f"/api/v1/capture-sessions/{session['id']}/frames/"
        headers = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {session['token']}"}
        frame = astronaut_jpeg(size=(320, 240))
        holder = sqlite3.connect(server.database, isolation_level=None)
        answer: dict[str, str] = {}
        try:
            holder.execute("BEGIN IMMEDIATE")
            status, body = _request(server.port, "POST", path, body=frame, headers=headers, answer=answer)
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert status == 503, body
        assert body["error"]["code"] == "database_busy"
        assert body["error"]["details"]["retry_after_seconds"] >= 1
        assert int(answer["Retry-After"]) >= 1
        status, body = _request(server.port, "POST", path, body=frame, headers=headers)
        assert status == 202, body
