"""Request bodies sent with `Transfer-Encoding: chunked`, for the WSGI application.

Django reads a body by its Content-Length and takes a request without one for empty, so a chunked upload
reached intake as zero bytes (400 `empty_frame`). The server (granian) decodes the chunks; this wrapper
reads the decoded body, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes of it, and hands it to Django with its
length, so every limit that reads Content-Length (intake's per-endpoint bounds, Django's own) holds as for
any other body. A longer body is a 413 before Django sees it, and nothing past the limit is read. The body
stays in memory, as every upload does here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

READ_STEP = 64 * 1024

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def is_chunked(environ: dict[str, Any]) -> bool:
    """A body framed by chunks rather than by a Content-Length."""
    if environ.get("CONTENT_LENGTH"):
        return False
    codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",")]
    return "chunked" in codings


def read_bounded(stream: Any, limit: int) -> bytes | None:
    """Up to `limit` bytes of the stream; None when there are more (only limit + 1 are ever read)."""
    parts, total = [], 0
    while total <= limit:
        block = stream.read(min(READ_STEP, limit + 1 - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return None if total > limit else b"".join(parts)


def _too_large(environ: dict[str, Any], start_response: StartResponse, limit: int) -> list[bytes]:
    message = f"The request body is larger than {limit} bytes."
    if environ.get("PATH_INFO", "").startswith("/api/"):
        from config.api.error_shape import error_body  # the WSGI wrapper loads before Django is set up

        body = json.dumps(error_body("request_too_large", message, {"max_bytes": limit})).encode()
        content_type = "application/json"
    else:
        body, content_type = message.encode(), "text/plain; charset=utf-8"
    # The rest of the body is never read, so the connection cannot carry another request.
    start_response("413 Payload Too Large", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                             ("Connection", "close")])
    return [body]


class ChunkedBodyMiddleware:
    """WSGI wrapper: a chunked body is read (bounded) and passed on with its Content-Length."""

    def __init__(self, app: WSGIApp, *, limit: Callable[[], int] | None = None) -> None:
        self.app = app
        self._limit = limit

    def limit(self) -> int:
        if self._limit is not None:
            return self._limit()
        from django.conf import settings

        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not is_chunked(environ):
            return self.app(environ, start_response)
        limit = self.limit()
        body = read_bounded(environ["wsgi.input"], limit)
        if body is None:
            return _too_large(environ, start_response, limit)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        del environ["HTTP_TRANSFER_ENCODING"]  # the body is now framed by its length
        return self.app(environ, start_response)
