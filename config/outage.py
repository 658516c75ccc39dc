"""What a web process does when a service it uses is away: the errors that mean "away", and a warning that is
logged once per interval per service, not once per request (an outage must not flood the log)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from config.api.error_shape import error_response

logger = logging.getLogger("visage.outage")

# Redis unreachable, refusing, timing out, or answering as something else than Redis.
CACHE_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
# Seconds between two warnings about the same service being away.
REPORT_INTERVAL_SECONDS = 60.0

# Seconds a service that just failed is not asked again: a Redis that hangs costs one request its timeout,
# not every request.
SKIP_AFTER_FAILURE_SECONDS = 5.0

_last_reported: dict[str, float] = {}
_failed_at: dict[str, float] = {}
_lock = threading.Lock()


def mark_failed(service: str) -> None:
    """`service` just failed: `recently_failed` says so for the next few seconds."""
    with _lock:
        _failed_at[service] = time.monotonic()


def recently_failed(service: str) -> bool:
    """Whether `service` failed within SKIP_AFTER_FAILURE_SECONDS, so that a caller can skip it at once."""
    with _lock:
        failed = _failed_at.get(service)
    return failed is not None and time.monotonic() - failed < SKIP_AFTER_FAILURE_SECONDS


def report_outage(service: str, message: str, *args: object) -> bool:
    """Log a warning that `service` is away, unless one was logged for it within the interval. True if it was
    logged now."""
    now = time.monotonic()
    with _lock:
        last = _last_reported.get(service)
        if last is not None and now - last < REPORT_INTERVAL_SECONDS:
            return False
        _last_reported[service] = now
    logger.warning(message, *args, extra={"service": service, "outage": True})
    return True


def reset_outage_reports() -> None:
    """Forget earlier warnings and failures (tests, and a process that wants the next outage seen at once)."""
    with _lock:
        _last_reported.clear()
        _failed_at.clear()


# --- The database -------------------------------------------------------------------------------------------------

DATABASE_RETRY_AFTER_SECONDS = 5
_DATABASE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 for a request the database could not serve: the API's error shape under /api/, a plain page elsewhere."""
    if request.path.startswith("/api/"):
        response: HttpResponse = error_response(
            503, "service_unavailable", "The database is unavailable; nothing was changed. Try again shortly.",
            {"service": "database", "retry_after_seconds": DATABASE_RETRY_AFTER_SECONDS},
        )
    else:
        response = HttpResponse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unavailable</title></head>"
            "<body><h1>Temporarily unavailable</h1><p>Nothing was changed. Please try again in a moment.</p>"
            "</body></html>",
            status=503, content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    """A view that fails because the database is unreachable answers 503 (with Retry-After), not a 500 or a
    debug page; the outage is a warning once per interval, not a traceback per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return database_outage_answer(request, exception)


# SQLite (the embedded default) kept its one write lock past the busy timeout: not an outage, a short wait.
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1


def _database_busy_response(request: HttpRequest) -> HttpResponse:
    seconds = DATABASE_BUSY_RETRY_AFTER_SECONDS
    if request.path.startswith("/api/"):
        response: HttpResponse = error_response(
            503, "database_busy", "The database is busy; try again shortly.", {"retry_after_seconds": seconds}
        )
    else:
        response = HttpResponse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Busy</title></head>"
            "<body><h1>One moment</h1><p>Nothing was changed. Please try again.</p></body></html>",
            status=503, content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(seconds)
    return response


def database_outage_answer(request: HttpRequest, exception: BaseException | None) -> HttpResponse | None:
    """The 503 for an exception that means the database is away or (SQLite) busy, else None. Views reach it
    through the middleware; a failure in another middleware (the session save, say) through the 500 handler."""
    # OperationalError is the database going away, refusing, timing out or giving up on a lock: all of them
    # pass, so the client is told to try again; errors in the query itself (ProgrammingError...) stay 500s.
    if not isinstance(exception, _DATABASE_ERRORS):
        return None
    if "database is locked" in str(exception):
        return _database_busy_response(request)
    report_outage("database", "the database is unavailable (%s); requests answer 503", type(exception).__name__)
    return database_unavailable_response(request)
