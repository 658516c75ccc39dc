"""The embedded default's in-memory frame store keeps no bytes past their TTL, even bytes nobody asks for
again (an in-process analysis that failed after taking its frame)."""

from __future__ import annotations

import pytest

from faceanalysis import store as store_module
from faceanalysis.store import MemoryFrameStore


def test_expired_bytes_leave_memory_when_the_next_frame_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    memory = MemoryFrameStore(ttl_seconds=5)
    memory.put_many({1: b"taken, then its analysis failed", 2: b"never taken"}, 5)
    assert memory.take(1) is not None  # now in flight, and nobody will release it
    clock[0] += 4
    memory.put_many({3: b"still young"}, 5)
    assert len(memory._items) == 3  # nothing had expired yet
    clock[0] += 2
    memory.put_many({4: b"new"}, 5)
    assert memory.exists(3) and memory.exists(4)
    assert len(memory._items) == 2  # frames 1 and 2 are gone from memory, not merely hidden
