"""The real web server (scripts/web: granian, as scripts/fullstack runs it) against the test database and Redis:
a frame goes in over HTTP, a body larger than intake accepts is refused before the server reads it, and a
worker process that dies is replaced."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import redis
from django.conf import settings
from django.db import connection

from faceanalysis.models import Frame
from tests.faceanalysis.factories import astronaut_jpeg, make_capture_session

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer(NamedTuple):
    port: int
    pid: int


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[WebServer]:
    """scripts/web with one worker process, on a free port, seeing what the test commits."""
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "VISAGE_BIND": f"127.0.0.1:{port}",
        "GRANIAN_WORKERS": "1",
        "GRANIAN_BLOCKING_THREADS": "2",
    }
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen([ROOT / "scripts" / "web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, "the web server did not come up:\n" + log_path.read_text()
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    probe.request("GET", "/healthz")
                    if probe.getresponse().status == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            yield WebServer(port, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_a_frame_posted_to_the_real_server_is_stored_and_queued(web_server: WebServer, org_a) -> None:
    session, token = make_capture_session(org_a)
    client = http.client.HTTPConnection("127.0.0.1", web_server.port, timeout=10)
    client.request(
        "POST", f"/api/v1/capture-sessions/{session.public_id}/frames/", body=astronaut_jpeg(),
        headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"},
    )
    response = client.getresponse()
    assert response.status == 202, response.read()
    frame = Frame.objects.get(session=session)
    assert frame.status == Frame.Status.QUEUED
    assert redis.Redis.from_url(settings.REDIS_URL).exists(f"visage:frame:{frame.pk}")


def test_an_oversized_body_is_refused_before_it_is_sent(web_server: WebServer, org_a) -> None:
    """A client declares 300 MB and sends none of it: the answer is a 413 at once, so the server handed the
    request over without buffering the body (a server that did would wait here for bytes that never come)."""
    session, token = make_capture_session(org_a)
    with socket.create_connection(("127.0.0.1", web_server.port), timeout=10) as raw:
        raw.sendall(
            f"POST /api/v1/capture-sessions/{session.public_id}/frames/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: image/jpeg\r\nAuthorization: Bearer {token}\r\nContent-Length: 300000000\r\n\r\n".encode()
        )
        head = ""
        # Headers and body may come in separate segments: read until the body's code is in or the server closes.
        while "request_too_large" not in head and (chunk := raw.recv(65536)):
            head += chunk.decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    assert "request_too_large" in head
    assert not Frame.objects.filter(session=session).exists()


def test_a_web_worker_that_dies_is_replaced(web_server: WebServer) -> None:
    """A worker process killed outright (out of memory, a crash in a native library) is started again, as
    gunicorn's arbiter did: the server answers again without anyone restarting it."""
    master = web_server.pid  # scripts/web execs granian's main process
    [worker] = _children(master)
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "no new worker process answered"
        try:
            probe = http.client.HTTPConnection("127.0.0.1", web_server.port, timeout=2)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert _children(master) and worker not in _children(master)



def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
