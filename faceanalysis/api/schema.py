"""The face-analysis API in the OpenAPI schema: how capture tokens authenticate, and the bodies intake reads
(see faceanalysis.api.parsing), which no serializer describes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter

from faceanalysis.api.parsing import MEDIA_TIME_MS_MAX
from faceanalysis.validation import ALLOWED_IMAGE_TYPES
from faceanalysis.video import ALLOWED_VIDEO_TYPES


class CaptureTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Capture tokens, listed only on the operations that take one (the rest answer a token with 403)."""

    target_class = "faceanalysis.api.authentication.CaptureTokenAuthentication"
    name = "captureToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "vcs_<secret>"}

    def get_security_requirement(self, auto_schema):
        if not getattr(auto_schema.view, "capture_token_allowed", False):
            return None
        return super().get_security_requirement(auto_schema)


_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
_MEDIA_TIME: dict[str, Any] = {
    "type": "integer", "minimum": 0, "maximum": MEDIA_TIME_MS_MAX,
    "description": "Where in the watched media the frame was taken, in milliseconds.",
}
_CAPTURED_AT: dict[str, Any] = {
    "type": "string", "format": "date-time", "description": "The client's clock when it took the frame, with a zone.",
}


def frame_upload_bodies() -> dict[str, Any]:
    """The three ways to post frames: one raw image, multipart files, or JSON with base64."""
    batch_max = settings.VISAGE_FRAME_BATCH_MAX
    raw = {media_type: {**_BINARY, "description": "One frame."} for media_type in ALLOWED_IMAGE_TYPES}
    multipart = {
        "type": "object",
        "properties": {
            "frame": {"type": "array", "items": _BINARY, "minItems": 1, "maxItems": batch_max,
                      "description": "The frames, as files."},
            "media_time_ms": {"type": "array", "items": _MEDIA_TIME, "maxItems": batch_max,
                              "description": "Media times of the frames, in the same order."},
            "captured_at": {"type": "array", "items": _CAPTURED_AT, "maxItems": batch_max,
                            "description": "Capture times of the frames, in the same order."},
        },
        "required": ["frame"],
    }
    item = {
        "type": "object",
        "properties": {
            "data": {"type": "string", "format": "byte", "description": "The image, base64."},
            "content_type": {"type": "string", "enum": list(ALLOWED_IMAGE_TYPES),
                             "description": "Its type; sniffed from the bytes when left out."},
            "media_time_ms": {**_MEDIA_TIME, "nullable": True},
            "captured_at": {**_CAPTURED_AT, "nullable": True},
        },
        "required": ["data"],
    }
    batch = {
        "type": "object",
        "properties": {"frames": {"type": "array", "items": item, "minItems": 1, "maxItems": batch_max}},
        "required": ["frames"],
    }
    return {**raw, "multipart/form-data": multipart, "application/json": batch}


FRAME_HEADERS = [
    OpenApiParameter(
        "X-Media-Time-Ms", {"type": "integer", "minimum": 0, "maximum": MEDIA_TIME_MS_MAX},
        location=OpenApiParameter.HEADER, description="With a raw image body: its media time in milliseconds.",
    ),
    OpenApiParameter(
        "X-Captured-At", {"type": "string", "format": "date-time"}, location=OpenApiParameter.HEADER,
        description="With a raw image body: the client's clock when it took the frame, with a zone.",
    ),
]


def _sample_fps() -> dict[str, Any]:
    return {
        "type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": settings.VISAGE_VIDEO_MAX_SAMPLE_FPS,
        "description": f"Frames per second of video to analyse (default {settings.VISAGE_VIDEO_SAMPLE_FPS}).",
    }


def sample_fps_parameter() -> OpenApiParameter:
    """`?sample_fps=`, for a raw video body (the multipart and JSON bodies may carry it too)."""
    return OpenApiParameter("sample_fps", _sample_fps(), description=_sample_fps()["description"])


def video_upload_bodies() -> dict[str, Any]:
    """The three ways to post a video: the raw body, a multipart file, or JSON with base64."""
    raw = {media_type: {**_BINARY, "description": "The video."} for media_type in ALLOWED_VIDEO_TYPES}
    multipart = {
        "type": "object",
        "properties": {"video": _BINARY, "sample_fps": _sample_fps()},
        "required": ["video"],
    }
    body = {
        "type": "object",
        "properties": {
            "video": {"type": "string", "format": "byte", "description": "The video, base64."},
            "content_type": {"type": "string", "enum": list(ALLOWED_VIDEO_TYPES),
                             "description": "Its type; sniffed from the bytes when left out."},
            "sample_fps": _sample_fps(),
        },
        "required": ["video"],
    }
    return {**raw, "multipart/form-data": multipart, "application/json": body}
