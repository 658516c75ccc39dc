"""What a web process does when a service it uses is away: the errors that mean "away", and a warning that is
logged once per interval per service, not once per request (an outage must not flood the log)."""

from __future__ import annotations

import logging
import threading
import time

import redis

logger = logging.getLogger("visage.outage")

# Redis unreachable, refusing, timing out, or answering as something else than Redis.
CACHE_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
# Seconds between two warnings about the same service being away.
REPORT_INTERVAL_SECONDS = 60.0

_last_reported: dict[str, float] = {}
_lock = threading.Lock()


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
    """Forget earlier warnings (tests, and a process that wants the next outage logged at once)."""
    with _lock:
        _last_reported.clear()
