"""Blink counting over a stream, and the command-line entry point on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceanalysis.engine import BlinkTracker, BoundingBox, Eyes, FaceAnalysis, FrameAnalysis, Quality

REPO = Path(__file__).resolve().parents[3]


def make_fake_frame(eyes_open: bool | None, timestamp: float) -> FrameAnalysis:
    """A hand-built FrameAnalysis (a fake, no model involved) with one face whose eyes are as given."""
    quality = Quality(0.0, 0.0, 0.0, 100.0, 1.0, True, ())
    faces = ()
    if eyes_open is not None:
        openness = 0.9 if eyes_open else 0.1
        eyes = Eyes(left_openness=openness, right_openness=openness, open=eyes_open)
        faces = (FaceAnalysis(box=BoundingBox(0, 0, 100, 100), detection_score=0.9, quality=quality, eyes=eyes),)
    return FrameAnalysis(width=640, height=480, timestamp=timestamp, faces=faces, models=())


def test_blink_tracker_counts_short_closures_only() -> None:
    tracker = BlinkTracker(max_closed_s=0.5)
    # Closures of 0.1 s and 0.3 s (a frame without a face inside does not break one) are blinks;
    # the last, 0.7 s long, is eyes shut.
    pattern = [True, True, False, True, True, False, False, None, True, False, False, False, False, False, False]
    state = None
    for index, eyes_open in enumerate([*pattern, False, True]):
        state = tracker.update(make_fake_frame(eyes_open, index * 0.1))
    assert state is not None and state.blinks == 2
    assert state.eyes_open is True and state.blinks_per_minute is None


def test_blink_tracker_refuses_time_going_backwards_and_missing_timestamps() -> None:
    tracker = BlinkTracker()
    tracker.update(make_fake_frame(True, 5.0))
    with pytest.raises(ValueError, match="earlier"):
        tracker.update(make_fake_frame(True, 4.0))
    frame = FrameAnalysis(width=1, height=1, timestamp=None, faces=(), models=())
    with pytest.raises(ValueError, match="timestamp"):
        tracker.update(frame)


def test_blink_rate_appears_after_ten_seconds() -> None:
    tracker = BlinkTracker()
    state = None
    for second in range(12):
        tracker.update(make_fake_frame(True, second))
        tracker.update(make_fake_frame(False, second + 0.2))
        state = tracker.update(make_fake_frame(True, second + 0.4))
    assert state is not None and state.blinks == 12
    assert state.blinks_per_minute == pytest.approx(12 * 60 / 11.4)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceanalysis.engine.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_cli_prints_json_for_an_image_and_a_video(models_dir: Path, astronaut: np.ndarray, tmp_path: Path) -> None:
    image_path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(image_path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    video_path = tmp_path / "astronaut.avi"
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for _ in range(20):
        writer.write(cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    writer.release()

    done = _cli(str(image_path), "--models-dir", str(models_dir))
    assert done.returncode == 0, done.stderr
    image_result = json.loads(done.stdout)
    assert len(image_result["faces"]) == 1
    assert image_result["faces"][0]["expression"]["top"] == "happy"

    done = _cli(str(video_path), "--fps", "4", "--models-dir", str(models_dir), "--indent", "0")
    assert done.returncode == 0, done.stderr
    video_result = json.loads(done.stdout)
    assert [frame["timestamp"] for frame in video_result["frames"]] == [0.0, 0.3, 0.5, 0.8, 1.0, 1.3, 1.5, 1.8]
    assert all(len(frame["faces"]) == 1 for frame in video_result["frames"])
    assert video_result["blinks"]["blinks"] == 0


def test_cli_fails_cleanly_on_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    bogus = tmp_path / "not-an-image.jpg"
    bogus.write_text("this is text")
    done = _cli(str(bogus))
    assert done.returncode == 1
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert _cli(str(tmp_path / "missing.png")).returncode == 2
