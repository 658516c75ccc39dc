"""Every error answer under /api/ in the one JSON shape of `config.api.errors`, whoever produced it: the URL
resolver (an unknown path, also under DEBUG, where Django would render its technical 404 page), a plain Django
view's 405, the CSRF failure view, or a crash page."""

import json
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from django.urls import get_urlconf, is_valid_path

from config.api.error_shape import error_body, error_response

API_PREFIX = "/api/"

# Codes as DRF and this API's own handlers name them, so that a client sees the same code whoever answered.
_CODES: dict[int, tuple[str, str]] = {
    400: ("malformed_request", "The request cannot be read."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    406: ("not_acceptable", "Could not satisfy the request Accept header."),
    413: ("request_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    429: ("throttled", "Request was throttled."),
    500: ("server_error", "Internal error; it has been logged."),
    503: ("service_unavailable", "The service is unavailable; try again later."),
}


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def shaped_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The error `response` in the API's JSON shape (same status); the original body is dropped, never echoed.
    Its headers and cookies stay (security headers, CORS, Vary, Allow, Retry-After ...)."""
    status = response.status_code
    code, message = _CODES.get(status, (HTTPStatus(status).phrase.lower().replace(" ", "_"), ""))
    if not message:
        message = f"{HTTPStatus(status).phrase}."
    details: dict[str, object] = {}
    if status == 405:
        allowed = [m.strip() for m in response.get("Allow", "").split(",") if m.strip()]
        message = f'Method "{request.method}" not allowed.'
        details = {"allowed": allowed} if allowed else {}
    if getattr(response, "streaming", False):
        return error_response(status, code, message, details)
    response.content = json.dumps(error_body(code, message, details)).encode()
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):  # set by an inner middleware for the old body
        response["Content-Length"] = str(len(response.content))
    return response


class ApiErrorShapeMiddleware:
    """Rewrites non-JSON error responses under /api/ into the API's error shape; JSON ones pass untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        missing_slash = self._missing_slash(request)
        if missing_slash:
            # CommonMiddleware would redirect (dropping the body) or, under DEBUG, crash on a POST.
            message = "Not found. API paths end with a slash."
            return error_response(404, "not_found", message, {"did_you_mean": missing_slash})
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith(API_PREFIX) or _is_json(response):
            return response
        return shaped_error(request, response)

    @staticmethod
    def _missing_slash(request: HttpRequest) -> str:
        """The slashed path, when an unsafe request under /api/ lacks only its trailing slash."""
        path = request.path_info
        if request.method in ("GET", "HEAD", "OPTIONS") or not path.startswith(API_PREFIX) or path.endswith("/"):
            return ""
        urlconf = getattr(request, "urlconf", get_urlconf())
        if is_valid_path(path, urlconf) or not is_valid_path(f"{path}/", urlconf):
            return ""
        return f"{request.path}/"
