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
