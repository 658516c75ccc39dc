"""Requests that no view can serve are answered before any of them runs.

A NUL character in the path, the query string, a header or a cookie would reach a query somewhere (a URL's
session id, a campaign id, the session cookie) and PostgreSQL refuses NUL in text: a 500 instead of a 4xx.
No resource has a NUL in its path, so such a path is a 404 (as any other unknown id); NUL elsewhere, and a
Content-Length that is not a number (Django's own body reading would fail on it), are a 400.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from config.api.error_shape import error_response
from config.api.errors import not_found


def malformed_reason(request: HttpRequest) -> str | None:
    """Why the request cannot be served, or None. A few substring checks: it runs on every request."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        return "The query string contains a NUL character."
    length = request.META.get("CONTENT_LENGTH")
    if length and not (length.isascii() and length.strip().isdigit()):
        return "The Content-Length header is not a number."
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key == "CONTENT_TYPE") and isinstance(value, str) and "\x00" in value:
            return "A header contains a NUL character."
    if any("\x00" in name or "\x00" in value for name, value in request.COOKIES.items()):
        return "A cookie contains a NUL character."
    return None


class MalformedRequestMiddleware:
    """Answers 404 for a path with a NUL, 400 for a request `malformed_reason` refuses (in the API's error shape
    under /api/)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info:
            return not_found(request)
        reason = malformed_reason(request)
        if reason is None:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            return error_response(400, "malformed_request", reason)
        return HttpResponseBadRequest(reason, content_type="text/plain; charset=utf-8")
