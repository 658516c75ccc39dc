"""Frames out of a request, in any of three shapes, with the size bound checked before the body is read:

- raw body: `Content-Type: image/jpeg|png|webp` (one frame; `X-Media-Time-Ms`, `X-Captured-At` headers),
- multipart: one or more `frame` files, with optional `media_time_ms` / `captured_at` values in the same order,
- JSON: `{"frames": [{"data": "<base64>", "content_type": "image/jpeg", "media_time_ms": 1200}]}`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.request import Request

from faceanalysis.errors import FrameRejected
from faceanalysis.services.intake import IncomingFrame
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


class InvalidValue(ValueError):
    """A request value of the wrong type or out of range; the message names the field and what it takes."""


# A number in plain decimal notation: what JSON and headers carry. Python's float() also takes "inf", "nan",
# "1_000" and surrounding blanks, none of which is a number of milliseconds.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# Frame.media_time_ms is a positive integer column: 32 bits on PostgreSQL.
MEDIA_TIME_MS_MAX = 2**31 - 1
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)  # a day of margin: every zone offset of it is still a datetime
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def number_value(value: Any, *, field: str, minimum: float, maximum: float, whole: bool = False) -> float:
    """A finite number from a JSON number or a decimal string, within [minimum, maximum]. Booleans, lists,
    objects, "inf", "nan" and numbers beyond the range are refused; `whole` refuses fractions too."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValue(f"{field} must be a number.")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64 or not _DECIMAL.fullmatch(text):
            raise InvalidValue(f"{field} must be a number.")
        number: float = int(text) if text.lstrip("+-").isdigit() else float(text)
    else:
        number = value
    # Compared as given: a huge int stays exact and an infinite float fails the range, neither overflows.
    if number != number or not minimum <= number <= maximum:  # number != number: NaN
        raise InvalidValue(f"{field} must be between {minimum:g} and {maximum:g}.")
    if whole and number != int(number):
        raise InvalidValue(f"{field} must be a whole number.")
    return number


def moment_value(value: Any, *, field: str) -> datetime:
    """An aware datetime from an ISO 8601 string with a zone; impossible dates and offsets are refused."""
    if not isinstance(value, str) or len(value) > 64 or "\x00" in value:
        raise InvalidValue(f"{field} must be an ISO 8601 time with a zone.")
    try:
        moment = parse_datetime(value.strip())
    except (ValueError, OverflowError):  # month 13, hour 25, an offset of 99 hours
        moment = None
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(f"{field} must be an ISO 8601 time with a zone.")
    # Compared aware (never overflows); a time outside these would overflow once converted to UTC for storage.
    if not _EARLIEST <= moment <= _LATEST:
        raise InvalidValue(f"{field} must be a time between the years 1 and 9999.")
    return moment


def optional_text(value: Any, *, field: str, max_length: int) -> str | None:
    """A short string or nothing (None or absent); any other type is refused."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidValue(f"{field} must be a string of at most {max_length} characters.")
    return value


def query_number(request: Request, name: str, *, default: float, minimum: float, maximum: float,
                 whole: bool = False) -> float:
    """A numeric query parameter within its range; a 400 naming the parameter otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return number_value(raw, field=name, minimum=minimum, maximum=maximum, whole=whole)
    except InvalidValue as error:
        raise exceptions.ValidationError({name: str(error)}) from None


def _media_time(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        # Fractions (a video's currentTime * 1000) are truncated to the millisecond.
        return int(number_value(value, field="media_time_ms", minimum=0, maximum=MEDIA_TIME_MS_MAX))
    except InvalidValue as error:
        raise FrameRejected(f"{error} (milliseconds, 0 to {MEDIA_TIME_MS_MAX})", code="invalid_media_time") from None


def _captured_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return moment_value(value, field="captured_at")
    except InvalidValue as error:
        raise FrameRejected(str(error), code="invalid_captured_at") from None


def _declared_type(value: Any, field: str) -> str | None:
    try:
        return optional_text(value, field=field, max_length=255)
    except InvalidValue as error:
        raise FrameRejected(str(error), code="invalid_content_type") from None


def _sample_fps(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return number_value(value, field="sample_fps", minimum=0, maximum=settings.VISAGE_VIDEO_MAX_SAMPLE_FPS)
    except InvalidValue:
        raise FrameRejected(
            f"sample_fps must be a number above 0 and at most {settings.VISAGE_VIDEO_MAX_SAMPLE_FPS}.",
            code="invalid_sample_fps",
        ) from None


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
                    declared_type=_declared_type(item.get("content_type"), f"frames[{i}].content_type"),
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
        declared = _declared_type(request.data.get("content_type"), "content_type")
        sample = request.data.get("sample_fps", sample)
    else:
        raise FrameRejected("Send an MP4 or WebM video (raw body, multipart 'video' or JSON base64).",
                            code="unsupported_media_type", status_code=415)
    return data, declared, _sample_fps(sample)
