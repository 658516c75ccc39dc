"""The one error shape as plain Django responses, for code outside DRF views (handlers, middleware, the outage
answers). Imports nothing of DRF: DRF's settings load the throttle, which loads the outage module, which uses
this one."""

from typing import Any

from django.http import JsonResponse


def error_body(code: str, message: str, details: Any = None, path: str | None = None) -> dict[str, Any]:
    """The JSON body of an error response; `path` (only when given) names the offending member of the request
    body, e.g. `rules[2].condition.all[1].value`."""
    body: dict[str, Any] = {"code": code, "message": message, "details": details or {}}
    if path:
        body["path"] = path
    return {"error": body}


def error_response(status_code: int, code: str, message: str, details: Any = None) -> JsonResponse:
    """An error as a plain Django response, for code outside DRF views (handlers, middleware)."""
    return JsonResponse(error_body(code, message, details), status=status_code)
