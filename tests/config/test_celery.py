"""The Celery app: JSON only, acks late, named queues; a real worker answers over real Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_celery_is_json_only_and_acks_late() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert {q.name for q in app.conf.task_queues} >= {"default", "analysis", "analysis_gpu"}


@pytest.mark.django_db
def test_embedded_default_runs_tasks_in_process() -> None:
    if settings.REDIS_URL:
        pytest.skip("full stack: tasks go to the broker")
    from accounts.tasks import ping

    assert ping.delay().get()["status"] == "pong"


@pytest.mark.services
@pytest.mark.slow
def test_a_real_worker_answers_over_redis() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "CELERY_TASK_ALWAYS_EAGER": "false"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "--pool", "solo",
         "--loglevel", "WARNING", "--hostname", f"pytest-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        result = app.send_task("accounts.ping", queue="default")
        deadline = time.monotonic() + 60
        while not result.ready() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        assert result.get(timeout=1) == {"status": "pong", "database": "postgresql"}
    finally:
        worker.terminate()
        worker.wait(timeout=20)


class _WorkerTask:
    """What Celery's task signals pass as `sender` for a task run by a worker (not eagerly)."""

    class request:  # noqa: N801 - mirrors Task.request
        is_eager = False


@pytest.mark.services  # PostgreSQL: an in-memory SQLite test database is never closed
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_between_tasks_and_closes_it_as_django_would() -> None:
    import time

    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connection

    from config.celery import app, close_old_database_connections

    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):  # what a worker does around each task
        fixup.on_task_prerun(sender=_WorkerTask)
        close_old_database_connections(sender=_WorkerTask)
        fixup.on_task_postrun(sender=_WorkerTask)
        close_old_database_connections(sender=_WorkerTask)
    assert connection.connection is opened  # no new connection per task

    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    close_old_database_connections(sender=_WorkerTask)
    assert connection.connection is None
