"""Domain errors of face analysis. Each carries the HTTP status and stable code the API answers with;
messages never contain frame bytes or personal data."""

from __future__ import annotations

from typing import Any


class FaceAnalysisError(Exception):
    """Base: a request that cannot be served, with the status and code the API gives it."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details or {}


class FrameRejected(FaceAnalysisError):
    """A frame or video failed the cheap checks before anything was queued."""


class ConsentRequired(FaceAnalysisError):
    """The consent guard said no; details carry its reason."""

    status_code = 403
    code = "consent_required"


class SessionEnded(FaceAnalysisError):
    """Frames for an ended capture session are not accepted."""

    status_code = 409
    code = "session_ended"


class FrameRateExceeded(FaceAnalysisError):
    """More frames per second than a session may send."""

    status_code = 429
    code = "frame_rate_exceeded"


class ServiceUnavailable(FaceAnalysisError):
    """The frame store or the broker is down; nothing was kept. Says when to try again."""

    status_code = 503
    code = "frame_store_unavailable"
    retry_after_seconds = 5

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        details = {"retry_after_seconds": self.retry_after_seconds, **(details or {})}
        super().__init__(message, code=code, details=details)
