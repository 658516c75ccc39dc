"""Blink counting across the frames of one stream; the caller keeps one tracker per stream."""

from __future__ import annotations

from dataclasses import dataclass

from .results import FrameAnalysis, _ToDict


@dataclass(frozen=True, slots=True)
class BlinkState(_ToDict):
    """Blink statistics of a stream so far."""

    blinks: int
    eyes_open: bool | None  # None when the last frame had no usable face
    seconds_observed: float
    blinks_per_minute: float | None  # None until 10 seconds have been observed


class BlinkTracker:
    """Counts blinks of the largest face: open -> closed -> open, with the closure at most max_closed_s long.

    A closure longer than that is eyes shut, not a blink. Frames without a usable face leave the
    state as it was. Not thread-safe; one instance per stream.
    """

    def __init__(self, *, max_closed_s: float = 0.5) -> None:
        self.max_closed_s = max_closed_s
        self._blinks = 0
        self._closed_since: float | None = None
        self._was_open: bool | None = None
        self._first: float | None = None
        self._last: float | None = None

    def update(self, frame: FrameAnalysis, timestamp: float | None = None) -> BlinkState:
        """Feed the next frame (timestamps in seconds, increasing); returns the state after it."""
        when = timestamp if timestamp is not None else frame.timestamp
        if when is None:
            raise ValueError("blink tracking needs a timestamp, on the frame or as an argument")
        if self._last is not None and when < self._last:
            raise ValueError(f"timestamp {when} is earlier than the previous {self._last}")
        self._first = when if self._first is None else self._first
        self._last = when
        eyes = frame.faces[0].eyes if frame.faces else None
        if eyes is not None:
            if not eyes.open and self._was_open:
                self._closed_since = when
            elif eyes.open and self._was_open is False and self._closed_since is not None:
                if when - self._closed_since <= self.max_closed_s:
                    self._blinks += 1
                self._closed_since = None
            self._was_open = eyes.open
        observed = when - self._first
        return BlinkState(
            blinks=self._blinks,
            eyes_open=None if eyes is None else eyes.open,
            seconds_observed=observed,
            blinks_per_minute=self._blinks * 60.0 / observed if observed >= 10.0 else None,
        )
