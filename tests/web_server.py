"""The real web server (scripts/web: granian, as scripts/fullstack runs it) against the test database and Redis,
for tests that must talk HTTP to what production runs."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


class WebServer(NamedTuple):
    """A running scripts/web: where it listens and its main process."""

    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_health(port: int) -> bool:
    """Whether a server on `port` answers /healthz with 200 now."""
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        probe.request("GET", "/healthz")
        return probe.getresponse().status == 200
    except OSError:
        return False
    finally:
        probe.close()


@contextmanager
def running_server(command: list, *, port: int, log_path: Path, env: dict[str, str]) -> Iterator[int]:
    """Run `command` (a server listening on `port`), wait until it answers /healthz, and stop it afterwards;
    its output goes to `log_path`, which a failed start shows."""
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not answers_health(port):
                assert server.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, "the server did not come up:\n" + log_path.read_text()
                time.sleep(0.2)
            yield server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def scripts_web(log_path: Path, **env: str) -> Iterator[WebServer]:
    """scripts/web with one worker process on a free port, test settings and `env` (no database chosen)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "VISAGE_BIND": f"127.0.0.1:{port}",
        "GRANIAN_WORKERS": "1",
        "GRANIAN_BLOCKING_THREADS": "2",
        **env,
    }
    with running_server([ROOT / "scripts" / "web"], port=port, log_path=log_path, env=env) as pid:
        yield WebServer(port, pid)


def current_database_url() -> str:
    """The URL of the database this test runs on (PostgreSQL), for a server process to use."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def web_server(log_path: Path, **env_overrides: str) -> Iterator[WebServer]:
    """scripts/web seeing what the test commits (a transactional test on PostgreSQL) and the test's Redis, tasks
    sent to the broker. `env_overrides` go to the server's environment."""
    env = {
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **env_overrides,
    }
    with scripts_web(log_path, **env) as server:
        yield server
