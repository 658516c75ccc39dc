"""Fixtures for face-analysis tests: a clean frame store, the fake engine and the real one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from faceanalysis import inference
from faceanalysis.engine import (
    BoundingBox,
    Expression,
    Eyes,
    FaceAnalysis,
    FrameAnalysis,
    Gaze,
    HeadPose,
    ModelInfo,
    Quality,
)
from faceanalysis.store import MemoryFrameStore, RedisFrameStore, frame_store


class FakeEngine:
    """A FAKE engine for pipeline tests that do not claim analysis works: one attentive, smiling face per
    image, fixed numbers, no model. Counts its calls so tests can assert what was (not) analysed."""

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    def analyze_batch(self, images: Sequence[np.ndarray], timestamps=None, attributes=None) -> list[FrameAnalysis]:
        self.calls += 1
        self.images += len(images)
        face = FaceAnalysis(
            box=BoundingBox(10, 10, 100, 100),
            detection_score=0.99,
            quality=Quality(100.0, 120.0, 40.0, 100.0, 0.95, True, ()),
            pose=HeadPose(0.0, 0.0, 0.0),
            gaze=Gaze(0.0, 0.0, 0.95, True),
            eyes=Eyes(0.9, 0.9, True),
            blendshapes={"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8},
            expression=Expression({"happy": 0.9, "neutral": 0.1}, "happy", 0.9, "fake@0"),
        )
        return [
            FrameAnalysis(width=int(i.shape[1]), height=int(i.shape[0]), timestamp=None, faces=(face,),
                          models=(ModelInfo("fake", "fake-engine", "0"),))
            for i in images
        ]


def clear_frame_store() -> None:
    store = frame_store()
    if isinstance(store, MemoryFrameStore):
        store.clear()
    elif isinstance(store, RedisFrameStore):
        keys = list(store.client.scan_iter(match=f"{store.prefix}*", count=1000))
        if keys:
            store.client.delete(*keys)


def stored_frame_count() -> int:
    """How many frames' bytes the store holds now (queued or in flight), whichever store runs."""
    store = frame_store()
    if isinstance(store, MemoryFrameStore):
        return len(store._items)
    if isinstance(store, RedisFrameStore):
        return sum(1 for _ in store.client.scan_iter(match=f"{store.prefix}*", count=1000))
    raise AssertionError(f"unknown frame store {store!r}")


@pytest.fixture(autouse=True)
def _clean_frame_store() -> Iterator[None]:
    clear_frame_store()
    yield
    clear_frame_store()


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    engine = FakeEngine()
    inference.set_engine(engine)
    yield engine
    inference.set_engine(None)


@pytest.fixture(scope="session")
def real_engine():
    """The real engine with the installed models (created once per test session)."""
    engine = inference.get_engine()
    yield engine


@pytest.fixture
def analyze(django_capture_on_commit_callbacks, monkeypatch):
    """`worker.frame_analyze` with its after-commit hooks (store cleanup, the aggregates refresh) run at once:
    the test's own transaction never commits. The refresh a frame schedules runs at once too, through the real
    guarded task, as on the embedded default."""
    from faceanalysis import tasks
    from faceanalysis.services import worker

    task = tasks.refresh_session_aggregates
    monkeypatch.setattr(task, "apply_async", lambda kwargs, countdown: task.apply(kwargs=kwargs))

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return worker.frame_analyze(**kwargs)

    return run
