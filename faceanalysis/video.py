"""Video sampling from memory: PyAV reads the upload from a BytesIO (no temp file), frames are taken at the
sample rate by presentation time and re-encoded as JPEG for the frame store."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from faceanalysis.errors import FrameRejected

MP4, WEBM = "video/mp4", "video/webm"
ALLOWED_VIDEO_TYPES = (MP4, WEBM)
_ALIASES = {"video/x-matroska": WEBM, "video/quicktime": MP4}
JPEG_QUALITY = 90


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One sampled frame: JPEG bytes and where it sits on the video's timeline."""

    jpeg: bytes
    width: int
    height: int
    media_time_ms: int


def sniff_video_type(data: bytes) -> str | None:
    """MP4 (an ISO BMFF `ftyp` box first) or WebM/Matroska (EBML magic), else None."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return MP4
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    return None


def check_video(data: bytes, declared_type: str | None, *, max_bytes: int) -> str:
    """Cheap checks before decoding; returns the sniffed type or raises FrameRejected."""
    if not data:
        raise FrameRejected("The video is empty (zero bytes).", code="empty_video")
    if len(data) > max_bytes:
        raise FrameRejected(
            f"The video is {len(data)} bytes; at most {max_bytes} are accepted.", code="video_too_large",
            status_code=413, details={"max_bytes": max_bytes},
        )
    sniffed = sniff_video_type(data)
    if sniffed is None:
        raise FrameRejected("Not an MP4 or WebM video.", code="unsupported_media_type", status_code=415,
                            details={"accepted": list(ALLOWED_VIDEO_TYPES)})
    declared = (declared_type or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    if declared not in ("", "application/octet-stream") and declared != sniffed:
        raise FrameRejected(f"Declared as {declared} but the bytes are {sniffed}.", code="content_type_mismatch",
                            status_code=415)
    return sniffed


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise FrameRejected("A video frame could not be re-encoded.", code="broken_video")
    return encoded.tobytes()


def sample_video(
    data: bytes, *, sample_fps: float, max_frames: int, max_pixels: int
) -> Iterator[SampledFrame]:
    """Yield frames every 1/sample_fps seconds of presentation time, at most max_frames of them."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError):  # av.FFmpegError covers every container error
        raise FrameRejected("The video container cannot be read.", code="broken_video") from None
    try:
        if not container.streams.video:
            raise FrameRejected("The file has no video stream.", code="no_video_frames")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if width and height and width * height > max_pixels:
            raise FrameRejected(f"The video is {width}x{height}; at most {max_pixels} pixels per frame.",
                                code="too_many_pixels", status_code=413)
        step = 1.0 / sample_fps
        next_time = 0.0
        emitted = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if frame.time + 1e-6 < next_time:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                yield SampledFrame(
                    jpeg=_encode_jpeg(rgb), width=int(rgb.shape[1]), height=int(rgb.shape[0]),
                    media_time_ms=int(round(frame.time * 1000)),
                )
                emitted += 1
                if emitted >= max_frames:
                    return
                # A fixed grid keeps the rate exact whatever the source's frame times are.
                while next_time <= frame.time + 1e-6:
                    next_time += step
        except (av.error.FFmpegError, ValueError, OSError):
            raise FrameRejected("The video stream is broken.", code="broken_video") from None
        if emitted == 0:
            raise FrameRejected("The video has no decodable frames.", code="no_video_frames")
    finally:
        container.close()
