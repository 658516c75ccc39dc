"""CORS for the capture-token endpoints only, so that a partner's page can stream with the embeddable
static/visage/capture.js. Origins come from VISAGE_CAPTURE_ALLOWED_ORIGINS (empty: same origin only); no other
endpoint answers cross-origin, and never with credentials (the capture token travels in a header, not a cookie).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers

# The endpoints a capture token opens: post frames, read the session's aggregates, end it.
CAPTURE_URL_NAMES = frozenset({"capture-session-frames", "capture-session-detail", "capture-session-end"})
ALLOWED_HEADERS = "Authorization, Content-Type, X-Capture-Token, X-Media-Time-Ms, X-Captured-At"


def is_capture_endpoint(path: str) -> bool:
    """True for the API paths a capture token may call."""
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.namespace == "api" and match.url_name in CAPTURE_URL_NAMES


class CaptureCorsMiddleware:
    """Answers preflights and adds Access-Control-Allow-Origin for allowed origins on capture endpoints."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin", "")
        if not origin or origin not in settings.VISAGE_CAPTURE_ALLOWED_ORIGINS:
            return self.get_response(request)
        if not is_capture_endpoint(request.path_info):
            return self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, POST"
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
            response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Access-Control-Allow-Origin"] = origin
        patch_vary_headers(response, ["Origin"])
        return response
