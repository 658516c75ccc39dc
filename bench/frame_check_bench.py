"""What checking a frame's body costs at intake, per 640x480 frame, against the header-only checks.

python bench/frame_check_bench.py [--repeat 400]

Intake runs on the API process at 300+ frames/s with about 2.5 ms of CPU per request in all, so a check that
adds a millisecond costs a third of the throughput. Each candidate runs `repeat` times per format on the
astronaut (a real face, letterboxed into 640x480), interleaved with the baseline (`validation.inspect_frame`
without its body check, as intake was before it), and prints median and p95 in microseconds and the ratio
of medians to that baseline, measured in the same run: the machine is shared and noisy, so read the ratios
first.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _frames() -> dict[str, bytes]:
    import cv2
    from PIL import Image
    from skimage.data import astronaut

    rgb = astronaut()
    canvas = np.full((480, 640, 3), 40, dtype=np.uint8)
    small = cv2.resize(rgb, (480, 480))
    canvas[:, 80:560] = small
    out = {}
    formats = [("jpeg", "JPEG", {"quality": 85}), ("png", "PNG", {}), ("webp", "WEBP", {"quality": 80})]
    for name, fmt, options in formats:
        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, format=fmt, **options)
        out[name] = buffer.getvalue()
    return out


def _pillow_full(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()


def _opencv_full(data: bytes) -> None:
    import cv2

    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


def _pillow_jpeg_draft(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width // 8, image.height // 8))
        image.load()


def _ffmpeg_mjpeg(options: dict[str, str]) -> Callable[[bytes], None]:
    import av

    def check(data: bytes) -> None:
        context = av.CodecContext.create("mjpeg", "r")
        context.options = options
        assert context.decode(av.Packet(data))

    return check


def _pillow_verify(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.verify()


def _png_inflate(data: bytes) -> None:
    import struct

    pos, idat = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    inflater = zlib.decompressobj()
    inflater.decompress(b"".join(idat))
    assert inflater.eof


def _intake_checks(data: bytes) -> None:
    from faceanalysis.validation import inspect_frame

    inspect_frame(data, None, max_bytes=10 << 20, max_pixels=3840 * 2160)


def _header_checks(data: bytes) -> None:
    """The baseline: intake's checks as they were before the body check (type, size, header, animation)."""
    from faceanalysis import validation

    body_check, validation.check_body = validation.check_body, lambda data, content_type: None
    try:
        _intake_checks(data)
    finally:
        validation.check_body = body_check


def _body_structure(data: bytes) -> None:
    from faceanalysis.validation import check_body, sniff_image_type

    check_body(data, sniff_image_type(data))


def _worker_strict_jpeg(data: bytes) -> None:
    from faceanalysis.validation import jpeg_scan_intact

    assert jpeg_scan_intact(data)


def _time(check: Callable[[bytes], None], data: bytes, repeat: int, baseline: Callable[[bytes], None]):
    mine, base = [], []
    for _ in range(repeat):
        for target, sink in ((check, mine), (baseline, base)):
            start = time.perf_counter()
            target(data)
            sink.append(time.perf_counter() - start)
    return mine, base


def _percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=400)
    args = parser.parse_args()
    frames = _frames()
    common = [("header checks (baseline)", _header_checks), ("body structure check alone", _body_structure),
              ("intake checks now (header + body)", _intake_checks)]
    candidates: dict[str, list[tuple[str, Callable[[bytes], None]]]] = {
        "jpeg": [*common, ("worker: jpeg_scan_intact", _worker_strict_jpeg), ("Pillow full decode", _pillow_full),
                 ("OpenCV full decode", _opencv_full), ("Pillow draft 1/8 decode", _pillow_jpeg_draft),
                 ("FFmpeg mjpeg, err_detect=explode", _ffmpeg_mjpeg({"err_detect": "explode"})),
                 ("FFmpeg mjpeg, explode + lowres=3", _ffmpeg_mjpeg({"err_detect": "explode", "lowres": "3"}))],
        "png": [*common, ("Pillow full decode", _pillow_full),
                ("OpenCV full decode", _opencv_full), ("Pillow verify() (chunk CRCs)", _pillow_verify),
                ("IDAT zlib inflate to the end", _png_inflate)],
        "webp": [*common, ("Pillow full decode", _pillow_full),
                 ("OpenCV full decode", _opencv_full)],
    }
    for name, data in frames.items():
        print(f"\n{name}: 640x480, {len(data)} bytes, {args.repeat} runs each")
        print(f"  {'check':40s} {'p50 us':>9s} {'p95 us':>9s} {'p50 / baseline':>15s}")
        for label, check in candidates[name]:
            check(data)  # warm: imports, codec tables
            mine, base = _time(check, data, args.repeat, _header_checks)
            ratio = statistics.median(mine) / statistics.median(base)
            print(f"  {label:40s} {statistics.median(mine) * 1e6:9.0f} {_percentile(mine, 0.95) * 1e6:9.0f} "
                  f"{ratio:14.1f}x")


if __name__ == "__main__":
    main()
