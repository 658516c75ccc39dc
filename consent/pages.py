"""Helpers shared by the public, server-rendered consent pages (here and in campaigns)."""

from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

SITE_LANGUAGES: tuple[str, ...] = tuple(code for code, _ in settings.LANGUAGES)


def page_language(request: HttpRequest, available: Sequence[str] = SITE_LANGUAGES) -> str:
    """The page's language: ?lang= (or a posted lang) when available, else the visitor's, else English or the
    first available. Activates it for the rest of the request."""
    choices = [code for code in SITE_LANGUAGES if code in available] or list(SITE_LANGUAGES)
    asked = request.POST.get("lang") or request.GET.get("lang")
    if asked not in choices:
        asked = translation.get_language_from_request(request)
    if asked not in choices:
        asked = "en" if "en" in choices else choices[0]
    translation.activate(asked)
    request.LANGUAGE_CODE = asked
    return asked


def private_page(response: HttpResponse) -> HttpResponse:
    """Pages whose URL is a secret: never cached, never sent as a referrer to another site, never indexed.
    (Not "no-referrer": browsers then send `Origin: null` with the page's own forms, which CSRF refuses.)"""
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
