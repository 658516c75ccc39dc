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


@contextmanager
def web_server(log_path: Path, **env_overrides: str) -> Iterator[WebServer]:
    """scripts/web with one worker process on a free port, seeing what the test commits (a transactional test
    on PostgreSQL). `env_overrides` go to the server's environment."""
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "VISAGE_BIND": f"127.0.0.1:{port}",
        "GRANIAN_WORKERS": "1",
        "GRANIAN_BLOCKING_THREADS": "2",
        **env_overrides,
    }
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
