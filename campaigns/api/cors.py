"""CORS for the public endpoints the snippets call from a partner's page (decisions, events, capture sessions):
only the Origins a campaign lists in `allowed_origins`, always with credentials (so that Visage's own HttpOnly
cookies recognise a visitor who consented on Visage's page), never `*`.

A preflight carries no body, so it cannot name its campaign: it is answered for an Origin that some campaign
which has not ended lists, and the request itself is then checked against its own campaign
(`cors_origin_allowed`), which refuses any other Origin with 403 before anything is read or written.
A view uses it like this:

    origin = cors_origin_allowed(request, campaign)
    if origin is None: raise ... 403 origin_not_allowed
    ...
    return cors_allow(response, origin)

and answers OPTIONS with `cors_preflight(request)`. `CorsPublicMixin` does both for a DRF view."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from campaigns.models import Campaign
from campaigns.selectors import campaign_origin_allowed_anywhere

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type, Accept"
PREFLIGHT_MAX_AGE = "600"
MAX_ORIGIN_LENGTH = 200


def request_origin(request: HttpRequest) -> str:
    """The request's Origin header as sent, or "" (absent, "null", or too long to be one)."""
    origin = request.headers.get("Origin", "")
    if not origin or origin == "null" or len(origin) > MAX_ORIGIN_LENGTH:
        return ""
    return origin


def cors_origin_allowed(request: HttpRequest, campaign: Campaign) -> str | None:
    """The request's Origin when `campaign` lists it in its allowed origins, else None (no Origin at all is not
    allowed either: these endpoints serve browsers on partner pages only)."""
    origin = request_origin(request)
    if not origin:
        return None
    return origin if origin in campaign.allowed_origin_list else None


def is_same_origin(request: HttpRequest, origin: str) -> bool:
    """Whether `origin` is Visage's own (a page of Visage itself needs no CORS)."""
    return origin == f"{request.scheme}://{request.get_host()}"


def cors_allow(response: HttpResponse, origin: str | None) -> HttpResponse:
    """Add the CORS answer headers for `origin` (credentials allowed); with None only `Vary: Origin`, so that a
    cache never hands one Origin's answer to another."""
    patch_vary_headers(response, ["Origin"])
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
    return response


def cors_preflight(request: HttpRequest) -> HttpResponse:
    """The answer to a preflight (OPTIONS): 204 with the allowed methods and headers for an Origin some campaign
    that has not ended lists, else 403 with no CORS header (the browser then sends nothing)."""
    origin = request_origin(request)
    if not campaign_origin_allowed_anywhere(origin=origin):
        return cors_allow(HttpResponse(status=403), None)
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return cors_allow(response, origin)


class CorsPublicMixin:
    """For a DRF view of a public snippet endpoint: OPTIONS is the preflight, and every answer (errors too) carries
    the CORS headers of the Origin the view accepted by setting `self.cors_origin` (from `cors_origin_allowed`)."""

    cors_origin: str | None = None

    def options(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        return cors_preflight(request)

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        return cors_allow(response, self.cors_origin)
