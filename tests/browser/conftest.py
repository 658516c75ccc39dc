"""Fixtures of the capture page's browser tests: the fake camera's video, in-process analysis, the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import astronaut_frame, ledger_flushable, write_y4m  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480 Y4M of the astronaut for Chromium's fake camera."""
    return write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m", astronaut_frame())


@pytest.fixture(scope="session")
def warm_engine():
    """The real engine with the installed models, loaded and run once before a page streams to it."""
    from faceanalysis import inference

    engine = inference.get_engine()
    engine.analyze_batch([astronaut_frame()])
    return engine


@pytest.fixture
def clean_frame_store() -> Iterator[None]:
    from tests.faceanalysis.conftest import clear_frame_store

    clear_frame_store()
    yield
    clear_frame_store()
