"""The broker's and Redis's own errors, named once for the apps' dispatch edges (faceanalysis.dispatch,
consent.dispatch), which turn them into their own answers so that no service sees them."""

import redis
from kombu.exceptions import OperationalError

# A Redis broker or cache that is away or too slow; kombu's own name for a broker it cannot reach.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, *REDIS_ERRORS)
