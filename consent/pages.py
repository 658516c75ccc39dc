"""Helpers shared by the public, server-rendered consent pages (here and in campaigns)."""

import hmac
import secrets
from collections.abc import Sequence

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import translation

SITE_LANGUAGES: tuple[str, ...] = tuple(code for code, _ in settings.LANGUAGES)

# A random id per browser, only so that the consent funnel counts a visitor once per notice version. It names no
# one: it is not tied to a subject, and the ledger keeps only a keyed hash of it per notice version and campaign.
VISITOR_COOKIE = "visage_visitor"
VISITOR_COOKIE_SALT = "consent.pages.visitor"
VISITOR_COOKIE_MAX_AGE = 30 * 24 * 3600
_NEW_VISITOR_ATTR = "_visage_new_visitor_id"

# The "my data" token is the visitor's own secret: it stays in their browser (a signed, HttpOnly cookie per
# campaign), never in the server-side session table, where anyone reading the database could collect them.
ACCESS_COOKIE_PREFIX = "visage_my_data_"
ACCESS_COOKIE_SALT = "campaigns.visitor.access"
ACCESS_COOKIE_MAX_AGE = 14 * 24 * 3600


def page_language_wanted(request: HttpRequest) -> str:
    """The site language the visitor asked for (?lang=, a posted lang) or their browser prefers, whatever the page
    can offer; to tell them when a page falls back to another."""
    asked = request.POST.get("lang") or request.GET.get("lang")
    if asked in SITE_LANGUAGES:
        return asked
    preferred = translation.get_language_from_request(request)
    return preferred if preferred in SITE_LANGUAGES else SITE_LANGUAGES[0]


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


def page_visitor_id(request: HttpRequest) -> str:
    """This browser's random visitor id (from its signed cookie), or a new one that `page_visitor_remember` then
    sets. A tampered or expired cookie counts as none."""
    try:
        visitor_id = request.get_signed_cookie(VISITOR_COOKIE, salt=VISITOR_COOKIE_SALT, max_age=VISITOR_COOKIE_MAX_AGE)
    except (KeyError, signing.BadSignature):
        visitor_id = ""
    if 16 <= len(visitor_id) <= 64:
        return visitor_id
    visitor_id = getattr(request, _NEW_VISITOR_ATTR, "") or secrets.token_urlsafe(16)
    setattr(request, _NEW_VISITOR_ATTR, visitor_id)
    return visitor_id


def page_visitor_remember(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Set the visitor cookie when `page_visitor_id` had to make a new id in this request."""
    visitor_id = getattr(request, _NEW_VISITOR_ATTR, "")
    if visitor_id:
        response.set_signed_cookie(
            VISITOR_COOKIE,
            visitor_id,
            salt=VISITOR_COOKIE_SALT,
            max_age=VISITOR_COOKIE_MAX_AGE,
            httponly=True,
            secure=settings.SESSION_COOKIE_SECURE,
            samesite="Lax",
        )
    return response


def access_cookie_set(response: HttpResponse, *, key: str, token: str) -> None:
    """Keep a "my data" token in this browser (signed, HttpOnly) under `key` (a campaign's public id)."""
    response.set_signed_cookie(
        f"{ACCESS_COOKIE_PREFIX}{key}",
        token,
        salt=ACCESS_COOKIE_SALT,
        max_age=ACCESS_COOKIE_MAX_AGE,
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
        samesite="Lax",
    )


def access_cookie_get(request: HttpRequest, *, key: str) -> str:
    """The "my data" token this browser keeps under `key`; empty when absent, tampered or too old."""
    return request.get_signed_cookie(
        f"{ACCESS_COOKIE_PREFIX}{key}", default="", salt=ACCESS_COOKIE_SALT, max_age=ACCESS_COOKIE_MAX_AGE
    )


def access_cookies_follow_rotation(
    request: HttpRequest, response: HttpResponse, *, old_token: str, new_token: str
) -> None:
    """After "Replace my link" in this browser: every cookie here that kept the old token keeps the new one, so
    that pages which link "my data" (the capture page) follow the current link."""
    for name in request.COOKIES:
        if not name.startswith(ACCESS_COOKIE_PREFIX):
            continue
        key = name[len(ACCESS_COOKIE_PREFIX) :]
        kept = access_cookie_get(request, key=key)
        if kept and hmac.compare_digest(kept, old_token):
            access_cookie_set(response, key=key, token=new_token)
