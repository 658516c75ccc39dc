"""Liveness and readiness probes: cheap, unauthenticated, JSON."""

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _timed(check) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "not ready"; the type name says why
        state: dict[str, object] = {"status": "down", "error": type(exc).__name__}
    else:
        state = {"status": "up"}
    state["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return state


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    import redis

    redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()


def _check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=1)  # one try: kombu waits 2 s before a second


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Every configured dependency is reachable; 503 naming the one that is not."""
    checks: dict[str, dict[str, object]] = {"database": _timed(_check_database)}
    checks["redis"] = _timed(_check_redis) if settings.REDIS_URL else {"status": "not_configured"}
    if settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = {"status": "in_process"}
    else:
        checks["broker"] = _timed(_check_broker)
    ready = all(c["status"] != "down" for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)
