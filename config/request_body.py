"""Read what is left of a request body before answering, so that an early answer (a 401, a 503 when the
database is down) reaches a client that is still sending: a server that closes a socket with unread bytes in
it resets the connection, and the client sees no answer at all. The bytes are read and dropped in chunks,
never kept; a body larger than any endpoint accepts is left alone (its 413 is answered before it is sent)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CHUNK_BYTES = 64 * 1024


def drain_request_body(request: HttpRequest) -> int:
    """Read and drop the unread rest of the body, up to DATA_UPLOAD_MAX_MEMORY_SIZE; returns bytes dropped."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if declared <= 0 or (limit is not None and declared > limit) or hasattr(request, "_body"):
        return 0
    stream = getattr(request, "_stream", None)
    if stream is None:
        return 0
    dropped = 0
    try:
        while chunk := stream.read(CHUNK_BYTES):
            dropped += len(chunk)
            del chunk
    except OSError:  # the client went away meanwhile: nobody is waiting for the answer
        pass
    return dropped


class DrainRequestBodyMiddleware:
    """After the response is ready, reads what the view left unread of the body (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            drain_request_body(request)
        return response
