"""python -m faceanalysis.engine.cli IMAGE_OR_VIDEO [--fps N]: analyse a file, print JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from .config import EngineConfig
from .errors import EngineError


def read_image(path: Path) -> np.ndarray | None:
    """The file decoded as an RGB image, or None when OpenCV cannot read it as one."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        return None
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if decoded is None else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def sample_video(path: Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, RGB frame) pairs sampled at about fps from a video file."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise EngineError(f"{path}: neither an image nor a video OpenCV can read")
    try:
        native = capture.get(cv2.CAP_PROP_FPS) or 0.0
        next_due = 0.0
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            seconds = index / native if native > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            index += 1
            if seconds + 1e-6 < next_due:
                continue
            next_due += 1.0 / fps
            yield seconds, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def main(argv: Sequence[str] | None = None) -> int:
    """Analyse an image or a video and print the results as JSON on stdout."""
    parser = argparse.ArgumentParser(description="Analyse faces in an image or a video file.")
    parser.add_argument("path", type=Path, help="image (JPEG, PNG, WebP, ...) or video file")
    parser.add_argument("--fps", type=float, default=2.0, help="video sampling rate (default 2)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--batch", type=int, default=8, help="video frames per analyze_batch call")
    parser.add_argument("--indent", type=int, default=2)
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    if not args.path.is_file():
        print(f"error: {args.path} is not a file", file=sys.stderr)
        return 2

    from .engine import Engine
    from .tracker import BlinkTracker

    engine = Engine(EngineConfig(models_dir=args.models_dir))
    try:
        image = read_image(args.path)
        if image is not None:
            output: dict[str, object] = {"source": str(args.path), **engine.analyze(image).to_dict()}
        else:
            tracker = BlinkTracker()
            frames: list[dict[str, object]] = []
            blinks = None
            pending: list[tuple[float, np.ndarray]] = []

            def flush() -> None:
                nonlocal blinks
                results = engine.analyze_batch([f for _, f in pending], [t for t, _ in pending])
                for result in results:
                    blinks = tracker.update(result)
                    frames.append(result.to_dict())
                pending.clear()

            for sample in sample_video(args.path, args.fps):
                pending.append(sample)
                if len(pending) >= args.batch:
                    flush()
            if pending:
                flush()
            if not frames:
                raise EngineError(f"{args.path}: no frames could be read")
            output = {
                "source": str(args.path),
                "fps": args.fps,
                "frames": frames,
                "blinks": blinks.to_dict() if blinks else None,
            }
    except (EngineError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    print(json.dumps(output, indent=args.indent or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
