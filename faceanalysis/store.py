"""The ephemeral frame store: the only place a frame's bytes rest between intake and analysis.

One key per frame with a TTL (the organization's frame-bytes period, consent.selectors.frame_bytes_ttl_seconds).
A worker takes a frame with GETDEL; in the same atomic step (a Lua script) the bytes are parked under an
in-flight key with what is left of that TTL, so that the bytes never outlive it, and so that a worker killed
mid-task leaves the frame to the redelivered message instead of losing it. The in-flight key is released
when the features are committed (or the frame is dropped). Whatever nobody takes, Redis forgets.

Redis in the full stack; an in-memory store (one process, tasks in-process) on the embedded default.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Protocol

from django.conf import settings


class FrameStoreUnavailable(Exception):
    """The store cannot be reached; intake answers 503, a worker retries."""


class FrameStore(Protocol):
    """What intake, workers and the withdrawal cascade need from a frame store."""

    def put_many(self, frames: Mapping[int, bytes], ttl_seconds: int) -> None:
        """Store every frame or none."""

    def take(self, frame_id: int) -> bytes | None:
        """The frame's bytes, moved out of the queued key in one step; None when gone (expired, dropped)."""

    def release(self, frame_ids: Iterable[int]) -> None:
        """Forget the in-flight copies of frames whose analysis committed."""

    def discard(self, frame_ids: Iterable[int]) -> int:
        """Delete queued and in-flight copies (drop, withdrawal); returns how many keys existed."""

    def exists(self, frame_id: int) -> bool:
        """Whether any copy of the frame is still held."""


def _queued_key(prefix: str, frame_id: int) -> str:
    return f"{prefix}{frame_id}"


def _inflight_key(prefix: str, frame_id: int) -> str:
    return f"{prefix}{frame_id}:inflight"


# GETDEL the queued copy and park it in flight for what is left of its TTL (the organization's frame-bytes
# period counts from intake, and taking a frame never extends it); a redelivery after a dead worker finds only
# the parked copy. ARGV[1] only for a queued key without a TTL, which intake never writes.
_TAKE_SCRIPT = """
local left = redis.call('PTTL', KEYS[1])
local value = redis.call('GETDEL', KEYS[1])
if value then
  if left < 1 then left = tonumber(ARGV[1]) end
  redis.call('SET', KEYS[2], value, 'PX', left)
  return value
end
return redis.call('GET', KEYS[2])
"""


class RedisFrameStore:
    """Frames in Redis under `<prefix><frame id>`; never persisted by Redis beyond its own settings."""

    def __init__(self, url: str, *, prefix: str = "visage:frame:", ttl_seconds: int = 300) -> None:
        import redis

        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        # Short timeouts: a dead Redis must turn into a 503 quickly, not a hung request.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30)
        self._take = self.client.register_script(_TAKE_SCRIPT)

    def put_many(self, frames: Mapping[int, bytes], ttl_seconds: int) -> None:
        try:
            if len(frames) == 1:  # the common case, one frame a request: no MULTI/EXEC around one SET
                ((frame_id, data),) = frames.items()
                self.client.set(_queued_key(self.prefix, frame_id), data, ex=ttl_seconds)
                return
            pipe = self.client.pipeline(transaction=True)
            for frame_id, data in frames.items():
                pipe.set(_queued_key(self.prefix, frame_id), data, ex=ttl_seconds)
            pipe.execute()
        except self._errors as exc:
            raise FrameStoreUnavailable(type(exc).__name__) from None

    def take(self, frame_id: int) -> bytes | None:
        keys = [_queued_key(self.prefix, frame_id), _inflight_key(self.prefix, frame_id)]
        try:
            return self._take(keys=keys, args=[self.ttl_seconds * 1000])
        except self._errors as exc:
            raise FrameStoreUnavailable(type(exc).__name__) from None

    def release(self, frame_ids: Iterable[int]) -> None:
        keys = [_inflight_key(self.prefix, i) for i in frame_ids]
        if keys:
            # On failure the TTL removes them; nothing reads the in-flight key of an analysed frame.
            with contextlib.suppress(*self._errors):
                self.client.delete(*keys)

    def discard(self, frame_ids: Iterable[int]) -> int:
        keys = [k for i in frame_ids for k in (_queued_key(self.prefix, i), _inflight_key(self.prefix, i))]
        deleted = 0
        try:
            for start in range(0, len(keys), 1000):
                deleted += int(self.client.delete(*keys[start : start + 1000]))
        except self._errors as exc:
            raise FrameStoreUnavailable(type(exc).__name__) from None
        return deleted

    def exists(self, frame_id: int) -> bool:
        try:
            return bool(self.client.exists(_queued_key(self.prefix, frame_id), _inflight_key(self.prefix, frame_id)))
        except self._errors as exc:
            raise FrameStoreUnavailable(type(exc).__name__) from None

    def count_in_window(self, key: str, count: int, *, ttl_seconds: int) -> int:
        """Add `count` to a short-lived counter (intake's frames-per-second bound) and return its new value."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incrby(key, count)
            pipe.expire(key, ttl_seconds)
            return int(pipe.execute()[0])
        except self._errors as exc:
            raise FrameStoreUnavailable(type(exc).__name__) from None


class MemoryFrameStore:
    """The embedded default: a dict with expiry times, for one process where tasks run in-process."""

    def __init__(self, *, ttl_seconds: int = 300) -> None:
        self.ttl_seconds = ttl_seconds
        self._items: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._items[key]
            return None
        return item[0]

    def _sweep(self, now: float) -> None:
        # Expired bytes leave memory at the next frame, not only when their key is read again: an in-process
        # analysis that failed after taking its frame never comes back for it.
        for key in [key for key, (_, expires) in self._items.items() if expires <= now]:
            del self._items[key]

    def put_many(self, frames: Mapping[int, bytes], ttl_seconds: int) -> None:
        now = time.monotonic()
        expires = now + ttl_seconds
        with self._lock:
            self._sweep(now)
            for frame_id, data in frames.items():
                self._items[_queued_key("", frame_id)] = (bytes(data), expires)

    def take(self, frame_id: int) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            queued = self._items.get(_queued_key("", frame_id))
            value = self._get(_queued_key("", frame_id), now)
            if value is not None:  # parked in flight until the queued copy would have expired, as in Redis
                del self._items[_queued_key("", frame_id)]
                self._items[_inflight_key("", frame_id)] = (value, queued[1])
                return value
            return self._get(_inflight_key("", frame_id), now)

    def release(self, frame_ids: Iterable[int]) -> None:
        with self._lock:
            for frame_id in frame_ids:
                self._items.pop(_inflight_key("", frame_id), None)

    def discard(self, frame_ids: Iterable[int]) -> int:
        deleted = 0
        with self._lock:
            for frame_id in frame_ids:
                for key in (_queued_key("", frame_id), _inflight_key("", frame_id)):
                    deleted += self._items.pop(key, None) is not None
        return deleted

    def exists(self, frame_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(self._get(k, now) is not None for k in (_queued_key("", frame_id), _inflight_key("", frame_id)))

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._items.clear()


@cache
def _store_for(url: str, ttl_seconds: int) -> FrameStore:
    if url:
        return RedisFrameStore(url, ttl_seconds=ttl_seconds)
    return MemoryFrameStore(ttl_seconds=ttl_seconds)


def frame_store() -> FrameStore:
    """The configured store, one per process (redis-py reconnects by itself after a fork)."""
    return _store_for(settings.VISAGE_FRAME_STORE_URL, settings.VISAGE_FRAME_TTL_SECONDS)
