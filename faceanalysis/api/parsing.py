"""Frames out of a request, in any of three shapes, with the size bound checked before the body is read:

- raw body: `Content-Type: image/jpeg|png|webp` (one frame; `X-Media-Time-Ms`, `X-Captured-At` headers),
- multipart: one or more `frame` files, with optional `media_time_ms` / `captured_at` values in the same order,
- JSON: `{"frames": [{"data": "<base64>", "content_type": "image/jpeg", "media_time_ms": 1200}]}`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework.request import Request

from faceanalysis.errors import FrameRejected
from faceanalysis.services import IncomingFrame
from faceanalysis.validation import ALLOWED_IMAGE_TYPES
from faceanalysis.video import ALLOWED_VIDEO_TYPES

MULTIPART_OVERHEAD = 64 * 1024


def _content_type(request: Request) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def check_length(request: Request, limit: int) -> None:
    """Refuse a body larger than `limit` by its Content-Length, before a byte of it is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE):
        raise FrameRejected(
            f"The request body is {length} bytes; at most {min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)} "
            "are accepted.", code="request_too_large", status_code=413,
        )


def _media_time(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        raise FrameRejected("media_time_ms must be a number of milliseconds.", code="invalid_media_time") from None
    if number < 0:
        raise FrameRejected("media_time_ms must not be negative.", code="invalid_media_time")
    return number


def _captured_at(value: Any):
    if value in (None, ""):
        return None
    moment = parse_datetime(str(value))
    if moment is None or moment.tzinfo is None:
        raise FrameRejected("captured_at must be an ISO 8601 time with a zone.", code="invalid_captured_at")
    return moment


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise FrameRejected(f"{field} must be a base64 string.", code="invalid_base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FrameRejected(f"{field} is not valid base64.", code="invalid_base64") from None


def frames_from_request(request: Request) -> list[IncomingFrame]:
    """The frames a request carries; FrameRejected for anything malformed."""
    per_frame = settings.VISAGE_FRAME_MAX_BYTES
    check_length(request, per_frame * settings.VISAGE_FRAME_BATCH_MAX * 4 // 3 + MULTIPART_OVERHEAD)
    kind = _content_type(request)
    if kind in ALLOWED_IMAGE_TYPES or kind in ("image/jpg", "application/octet-stream"):
        check_length(request, per_frame)
        return [
            IncomingFrame(
                data=request.body,
                declared_type=kind,
                captured_at=_captured_at(request.headers.get("X-Captured-At")),
                media_time_ms=_media_time(request.headers.get("X-Media-Time-Ms")),
            )
        ]
    if kind.startswith("image/"):
        raise FrameRejected("Not a JPEG, PNG or WebP image.", code="unsupported_media_type", status_code=415,
                            details={"accepted": list(ALLOWED_IMAGE_TYPES)})
    if kind == "multipart/form-data":
        files = request.FILES.getlist("frame") + request.FILES.getlist("frames")
        times = request.data.getlist("media_time_ms") if hasattr(request.data, "getlist") else []
        captured = request.data.getlist("captured_at") if hasattr(request.data, "getlist") else []
        return [
            IncomingFrame(
                data=upload.read(),
                declared_type=upload.content_type,
                media_time_ms=_media_time(times[i]) if i < len(times) else None,
                captured_at=_captured_at(captured[i]) if i < len(captured) else None,
            )
            for i, upload in enumerate(files)
        ]
    if kind == "application/json":
        items = request.data.get("frames") if isinstance(request.data, dict) else None
        if not isinstance(items, list):
            raise FrameRejected('Send {"frames": [{"data": "<base64>", ...}]}.', code="invalid")
        frames = []
        for i, item in enumerate(items[: settings.VISAGE_FRAME_BATCH_MAX + 1]):
            if not isinstance(item, dict):
                raise FrameRejected(f"frames[{i}] must be an object.", code="invalid")
            frames.append(
                IncomingFrame(
                    data=_b64(item.get("data"), f"frames[{i}].data"),
                    declared_type=item.get("content_type"),
                    media_time_ms=_media_time(item.get("media_time_ms")),
                    captured_at=_captured_at(item.get("captured_at")),
                )
            )
        return frames
    raise FrameRejected(
        "Send an image body (image/jpeg, image/png, image/webp), multipart 'frame' files or JSON with base64.",
        code="unsupported_media_type", status_code=415,
    )


def video_from_request(request: Request) -> tuple[bytes, str | None, float | None]:
    """The video bytes, declared type and requested sample rate of a request."""
    check_length(request, settings.VISAGE_VIDEO_MAX_BYTES * 4 // 3 + MULTIPART_OVERHEAD)
    kind = _content_type(request)
    sample = request.query_params.get("sample_fps")
    if kind in ALLOWED_VIDEO_TYPES or kind in ("video/x-matroska", "video/quicktime"):
        check_length(request, settings.VISAGE_VIDEO_MAX_BYTES)
        data, declared = request.body, kind
    elif kind == "multipart/form-data":
        upload = request.FILES.get("video")
        if upload is None:
            raise FrameRejected("Send the video as a multipart file named 'video'.", code="no_video")
        data, declared = upload.read(), upload.content_type
        sample = request.data.get("sample_fps", sample)
    elif kind == "application/json" and isinstance(request.data, dict):
        data = _b64(request.data.get("video"), "video")
        declared = request.data.get("content_type")
        sample = request.data.get("sample_fps", sample)
    else:
        raise FrameRejected("Send an MP4 or WebM video (raw body, multipart 'video' or JSON base64).",
                            code="unsupported_media_type", status_code=415)
    if sample in (None, ""):
        return data, declared, None
    try:
        return data, declared, float(sample)
    except (TypeError, ValueError):
        raise FrameRejected("sample_fps must be a number.", code="invalid_sample_fps") from None
