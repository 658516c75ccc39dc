"""One error shape for every API response that is not a success:

    {"error": {"code": "not_found", "message": "Not found.", "details": {...}}}

plus `path` where the error is about one member of the request body (`rules[2].condition.all[1].value`).

(built by `config.api.error_shape`; here DRF's exception handler and Django's error handlers use it)
"""

import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.api.error_shape import error_body, error_response


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        field, value = next(iter(detail.items()))
        text = _first_message(value)
        return text if field == "non_field_errors" else f"{field}: {text}"
    return str(detail)


def first_error_path(detail: Any, prefix: str = "") -> str | None:
    """Where the first message of a DRF validation error sits in the body (`variants[1].cta_url`); None for
    an error about the request as a whole."""
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        if key == "non_field_errors":
            return prefix or None
        step = f"[{key}]" if isinstance(key, int) else (f".{key}" if prefix else str(key))
        return first_error_path(value, prefix + step)
    if isinstance(detail, list) and detail and all(isinstance(item, dict | list) for item in detail):
        for index, item in enumerate(detail):
            if item:
                return first_error_path(item, f"{prefix}[{index}]")
    return prefix or None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler that renders every handled error in the one shape."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):  # Django's own limits on reading the body
        exc = _suspicious_as_api_error(exc)
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        # `details` is always an object: a bare list of messages is about the request as a whole.
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        code, message, details = "invalid", _first_message(exc.detail), detail
        path = getattr(exc, "path", None) or first_error_path(detail)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message, details, path = str(exc.detail), getattr(exc, "details", None) or {}, getattr(exc, "path", None)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
    response.data = error_body(str(code), message, details, path)
    return response


class RequestTooLarge(exceptions.APIException):
    """A body beyond DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is larger than this server accepts."


def _suspicious_as_api_error(exc: SuspiciousOperation) -> exceptions.APIException:
    """Django's refusals while reading a request (too big, too many fields or files, a bad multipart body) as
    the API's 413 or 400; the message is Django's, which names the limit and never the content."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    return exceptions.ParseError(str(exc)[:200] or "The request body cannot be read.", code="malformed_request")


def bad_request(request: Any, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 handler (a refusal outside a DRF view): the error shape for API paths, HTML elsewhere."""
    from django.views.defaults import bad_request as html_bad_request

    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            return error_response(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, RequestTooLarge.default_code,
                                  str(RequestTooLarge.default_detail))
        return error_response(status.HTTP_400_BAD_REQUEST, "malformed_request", "The request cannot be read.")
    return html_bad_request(request, exception)


def not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    """Django's 404 handler for API paths; pages keep the HTML 404."""
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return error_response(status.HTTP_404_NOT_FOUND, "not_found", "Not found.")
    return page_not_found(request, exception)


def server_error(request: Any) -> HttpResponse:
    """Django's 500 handler: JSON for API paths, the HTML page elsewhere. Never echoes the request. The
    database being away, where no view caught it (a middleware's own query), is a 503 all the same."""
    from django.views.defaults import server_error as html_server_error

    from config.outage import database_outage_answer

    unavailable = database_outage_answer(request, sys.exc_info()[1])  # Django calls this inside its except
    if unavailable is not None:
        return unavailable

    if request.path.startswith("/api/"):
        return error_response(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error", "Internal error; it has been logged."
        )
    return html_server_error(request)


class DomainAPIError(exceptions.APIException):
    """An app's own error (anything with `message`, `code`, `status_code`, and optionally `details` and `path`)
    rendered in the one error shape by `api_exception_handler`, which reads `details` and `path` from it."""

    def __init__(self, error: Any) -> None:
        self.status_code = error.status_code
        super().__init__(detail=error.message, code=error.code)
        self.details = getattr(error, "details", None) or {}
        self.path = getattr(error, "path", None) or None


class DomainErrorsMixin:
    """For an API view: the app errors in `domain_errors` answer in the error shape with their own status and code;
    a 429 or 503 also sends Retry-After (its `retry_after_seconds`, else 1)."""

    domain_errors: tuple[type[Exception], ...] = ()

    def handle_exception(self, exc: Exception) -> Response:
        if self.domain_errors and isinstance(exc, self.domain_errors):
            exc = DomainAPIError(exc)
        response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, DomainAPIError) and exc.status_code in (
            status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE
        ):
            response["Retry-After"] = str(exc.details.get("retry_after_seconds", 1))
        return response
