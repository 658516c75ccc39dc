"""API rate limits: one bucket per caller and one per organization, counted atomically in the cache.

A caller is an API key, a capture session (its capture token), a member's user, or the client address of an
anonymous request. The organization bucket is the ceiling of all of a tenant's callers together; no bucket is
ever shared between two organizations. Counting is a fixed window per bucket: INCR and EXPIRE in one
MULTI/EXEC round trip on Redis; on another cache (the embedded default's local memory) `add` and `incr`, which
are atomic within the one process that cache serves. When the cache cannot be reached the API fails open (a
rate limit is not worth refusing a withdrawal for) and says so in the log, once per interval.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from accounts.selectors import organization_for_user
from config.outage import CACHE_ERRORS, mark_failed, recently_failed, report_outage

if TYPE_CHECKING:
    from rest_framework.views import APIView

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """`"1200/min"` -> (1200, 60); None or an empty rate means no limit."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One counter: its cache key (without the window), its limit and its window in seconds."""

    key: str
    limit: int
    window: int


def count_hits(buckets: list[Bucket], *, now: float | None = None) -> list[tuple[int, int]]:
    """Add one hit to every bucket, atomically per bucket; (count in the current window, seconds until that
    window ends) for each. Raises one of CACHE_ERRORS when the cache is away."""
    now = time.time() if now is None else now
    backend = caches["default"]
    windows = [int(now // b.window) for b in buckets]
    keys = [f"throttle:{b.key}:{w}" for b, w in zip(buckets, windows, strict=True)]
    ends = [max(1, math.ceil((w + 1) * b.window - now)) for b, w in zip(buckets, windows, strict=True)]
    if isinstance(backend, RedisCache):
        full = [backend.make_and_validate_key(k) for k in keys]
        # Django's RedisCache has no atomic "incr or create with expiry"; its client has.
        client = backend._cache.get_client(full[0], write=True)
        pipe = client.pipeline(transaction=True)
        for key, bucket in zip(full, buckets, strict=True):
            pipe.incr(key)
            pipe.expire(key, bucket.window + 1)
        replies = pipe.execute()
        counts = [int(n) for n in replies[::2]]
    else:
        counts = []
        for key, bucket in zip(keys, buckets, strict=True):
            backend.add(key, 0, timeout=bucket.window + 1)
            try:
                counts.append(int(backend.incr(key)))
            except ValueError:  # expired between add and incr: this hit opens the window
                backend.set(key, 1, timeout=bucket.window + 1)
                counts.append(1)
    return list(zip(counts, ends, strict=True))


def _organization_id(request: Request) -> int | None:
    # An API key, or a capture token's credential (faceanalysis, which config may not import), names its
    # organization; a member's comes from the membership.
    organization_id = getattr(request.auth, "organization_id", None)
    if organization_id is not None:
        return int(organization_id)
    organization = organization_for_user(getattr(request, "user", None))
    return organization.pk if organization is not None else None


class PrincipalRateThrottle(BaseThrottle):
    """Rate limit per API key, capture session, user or client address (`principal`), and per organization
    (`organization`): a request passes only while both of its buckets have room. A view that names a
    `throttle_family` (decisions: one per page view) counts in that family's own buckets and rates
    (`<family>_principal`, `<family>_organization`), so page views neither eat nor are capped by the budget of
    the rest of the API."""

    THROTTLE_RATES: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES

    def __init__(self) -> None:
        self._wait: int | None = None

    def principal_key(self, request: Request) -> str:
        """The caller's own bucket; a capture session's, not the shared anonymous user's."""
        auth = request.auth
        if isinstance(auth, ApiKey):
            return f"key:{auth.pk}"
        rate_limit_key = getattr(auth, "rate_limit_key", None)
        if rate_limit_key:
            return str(rate_limit_key)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.pk is not None:
            return f"user:{user.pk}"
        return f"ip:{self.get_ident(request)}"

    def buckets(self, request: Request, family: str = "") -> list[Bucket]:
        """The buckets this request counts against (those of `family`, when given)."""
        prefix = f"{family}_" if family else ""
        result = []
        principal = parse_rate(self.THROTTLE_RATES.get(f"{prefix}principal"))
        if principal is not None:
            result.append(Bucket(f"{prefix}principal:{self.principal_key(request)}", *principal))
        organization = parse_rate(self.THROTTLE_RATES.get(f"{prefix}organization"))
        organization_id = _organization_id(request)
        if organization is not None and organization_id is not None:
            result.append(Bucket(f"{prefix}organization:{organization_id}", *organization))
        return result

    def allow_request(self, request: Request, view: APIView) -> bool:
        buckets = self.buckets(request, getattr(view, "throttle_family", ""))
        # Per cache location, so that a cache that failed is not held against another one (tests swap them).
        service = f"cache:{settings.CACHES['default'].get('LOCATION', '')}"
        if not buckets or recently_failed(service):
            return True
        try:
            counts = count_hits(buckets)
        except CACHE_ERRORS as exc:
            mark_failed(service)
            report_outage("cache", "API rate limits are not enforced: the cache is unavailable (%s)",
                          type(exc).__name__)
            return True
        waits = [end for bucket, (count, end) in zip(buckets, counts, strict=True) if count > bucket.limit]
        if waits:
            self._wait = max(waits)
            return False
        return True

    def wait(self) -> int | None:
        """Whole seconds until every full bucket has a new window."""
        return self._wait
