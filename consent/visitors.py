"""Which subject this browser is, on a public page: after consent on a page, the browser session remembers who
consented there (server side, in the Django session), and the subject's "my data" token stays in a signed cookie
only this browser holds, so the token never reaches page JavaScript and no page needs to know what the key names.

A page is known by its key (a campaign's public id); every page of that key (consent, capture, "my data") reads
the same visitor. Nothing here knows campaigns."""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.models import Organization
from consent.models import Subject
from consent.pages import access_cookie_get, access_cookie_set
from consent.selectors import subject_get, subject_get_by_access_token

VISITOR_SESSION_KEY = "visage.visitors"


@dataclass(frozen=True)
class Visitor:
    """Who consented on a page in this browser session: the subject and their "my data" token."""

    subject_public_id: str
    access_token: str


def visitor_remember(
    request: HttpRequest, response: HttpResponse, *, key: str, subject_public_id: str, access_token: str
) -> HttpResponse:
    """Remember the subject that just consented on the page `key` in this browser: its pseudonymous id in the
    session, its "my data" token in a signed cookie only this browser holds."""
    visitors = dict(request.session.get(VISITOR_SESSION_KEY, {}))
    visitors[key] = {"subject": subject_public_id}
    request.session[VISITOR_SESSION_KEY] = visitors
    request.session.cycle_key()  # a fresh session id for the consenting visitor
    access_cookie_set(response, key=key, token=access_token)
    return response


def visitor_get(request: HttpRequest, *, key: str) -> Visitor | None:
    """The subject that consented on the page `key` in this browser session, if any."""
    entry = request.session.get(VISITOR_SESSION_KEY, {}).get(key)
    if not isinstance(entry, dict) or not entry.get("subject"):
        return None
    access_token = access_cookie_get(request, key=key)
    return Visitor(subject_public_id=str(entry["subject"]), access_token=access_token)


def visitor_subject(request: HttpRequest, *, key: str, organization: Organization) -> Subject | None:
    """The subject (of `organization`) this browser consented as on the page `key`; None if it has not."""
    visitor = visitor_get(request, key=key)
    return subject_get(organization=organization, public_id=visitor.subject_public_id) if visitor else None


def visitor_subject_by_cookie(request: HttpRequest, *, key: str, organization_id: int) -> Subject | None:
    """The subject whose current "my data" token this browser keeps for the page `key` (the signed, HttpOnly
    cookie the consent page set), when of the organization `organization_id`: how Visage's endpoints recognise,
    from a partner's same-site page, a visitor who consented here, without Visage's session. None for a missing,
    tampered, expired, rotated or foreign token."""
    holder = subject_get_by_access_token(token=access_cookie_get(request, key=key))
    if holder is None or holder.organization_id != organization_id:
        return None
    return holder


def visitor_my_data_url(request: HttpRequest, *, key: str, organization_id: int) -> str | None:
    """The current "my data" page of the subject this browser consented as on the page `key` (of the organization
    `organization_id`), while the token this browser keeps is still theirs (one replaced elsewhere is not)."""
    visitor = visitor_get(request, key=key)
    if visitor is None or not visitor.access_token:
        return None
    holder = subject_get_by_access_token(token=visitor.access_token)
    if holder is None or holder.organization_id != organization_id:
        return None
    if str(holder.public_id) != visitor.subject_public_id:
        return None
    return reverse("consent:my-data", kwargs={"token": visitor.access_token})
