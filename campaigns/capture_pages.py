"""The end user's capture page: after consent on a campaign's page, the webcam streams frames to a capture
session through static/visage/capture.js (the same script partners embed).

The page is offered only when the consent guard allows face analysis for the subject this browser session
consented as; otherwise it explains, links back to the consent page, and carries no camera code at all. Loading
it opens nothing: the capture session is opened by a POST when the visitor presses "Start camera", and only
then does the script get the capture session's token (one session only), never the subject's "my data" token."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from campaigns import services
from campaigns.models import Campaign
from campaigns.selectors import campaign_get_public, campaign_unavailable_status, capture_refusal
from campaigns.views import campaign_unavailable
from consent.guards import DenialReason
from consent.models import Purpose
from consent.notice_text import capture_statement
from consent.pages import SITE_LANGUAGES, page_language, private_page
from consent.visitors import visitor_my_data_url, visitor_subject
from faceanalysis import selectors
from faceanalysis.errors import ConsentRequired, FaceAnalysisError
from faceanalysis.models import CaptureSession
from faceanalysis.services.capture import capture_session_end

CAPTURE_MEDIA_REF = "capture-page"
# The capture session this browser's page last opened, per campaign: a reload ends it before opening the next.
PAGE_SESSIONS_KEY = "visage.capture_sessions"


def capture_fps() -> float:
    """Frames per second the page sends: VISAGE_CAPTURE_FPS, never above what intake accepts."""
    return max(0.1, min(float(settings.VISAGE_CAPTURE_FPS), float(settings.VISAGE_CAPTURE_MAX_FPS)))


def _refusal(
    request: HttpRequest, campaign: Campaign, denial: tuple[str, str], language: str
) -> HttpResponse:
    reason, purpose = denial
    context = {
        "campaign": campaign,
        "organization": campaign.organization,
        "reason": reason,
        "purpose": purpose,
        # A purpose beside face analysis that the camera needs is named, so the visitor knows what is missing.
        "purpose_label": Purpose(purpose).label if purpose != Purpose.FACE_ANALYSIS else "",
        "language": language,
        "languages": SITE_LANGUAGES,
        "consent_url": reverse("campaigns:consent-page", kwargs={"public_id": campaign.public_id}),
    }
    return private_page(render(request, "faceanalysis/capture_no_consent.html", context, status=403))


def _my_data_url(request: HttpRequest, campaign: Campaign) -> str | None:
    """The visitor's "my data" page, as a stable link that redirects to the current personal link (so a page left
    open follows "Replace my link"); None while this browser keeps no current one (replaced elsewhere)."""
    if visitor_my_data_url(request, key=campaign.public_id, organization_id=campaign.organization_id) is None:
        return None
    return reverse("campaigns:visitor-my-data", kwargs={"public_id": campaign.public_id})


def _replace_page_session(request: HttpRequest, campaign: Campaign, session: CaptureSession) -> None:
    """End the session this browser's page opened before (a reload, a second tab), and remember the new one."""
    opened = dict(request.session.get(PAGE_SESSIONS_KEY, {}))
    previous = selectors.capture_session_get(
        organization=campaign.organization, public_id=opened.get(campaign.public_id)
    )
    if previous is not None and previous.is_open and previous.subject_id == session.subject_id:
        capture_session_end(session=previous)
    opened[campaign.public_id] = str(session.public_id)
    request.session[PAGE_SESSIONS_KEY] = opened


@require_GET
def capture_page(request: HttpRequest, public_id: str) -> HttpResponse:
    """The camera page of a campaign for the consenting visitor (nothing opened yet), or a friendly 403."""
    campaign = campaign_get_public(public_id=public_id)
    if campaign is None:
        return campaign_unavailable(request, public_id=public_id)
    language = page_language(request)
    subject = visitor_subject(request, key=campaign.public_id, organization=campaign.organization)
    refused = capture_refusal(campaign=campaign, subject=subject)
    if refused is not None:
        return _refusal(request, campaign, refused, language)
    context: dict[str, Any] = {
        "campaign": campaign,
        "organization": campaign.organization,
        "language": language,
        "languages": SITE_LANGUAGES,
        "start_url": reverse("capture:capture-session-open", kwargs={"public_id": campaign.public_id}),
        "fps": capture_fps(),
        "max_seconds": settings.VISAGE_CAPTURE_MAX_SECONDS,
        "my_data_url": _my_data_url(request, campaign),
        "welcome": request.GET.get("welcome") == "1",
        "consent_state_url": reverse("capture:capture-consent-state", kwargs={"public_id": campaign.public_id}),
        "derived_statement": capture_statement(campaign.derived_attribute_set, language),
    }
    return private_page(render(request, "faceanalysis/capture.html", context))


@require_GET
def capture_consent_state(request: HttpRequest, public_id: str) -> JsonResponse:
    """Whether this browser's consent to face analysis on the campaign still holds, for the open capture page to
    react to a withdrawal made elsewhere (another tab, the "my data" page): {"state": "active"} or the guard's
    reason. Says nothing about anyone else, and writes nothing."""
    campaign = campaign_get_public(public_id=public_id)
    if campaign is None:
        return _campaign_unavailable_json(public_id)
    subject = visitor_subject(request, key=campaign.public_id, organization=campaign.organization)
    refused = capture_refusal(campaign=campaign, subject=subject)
    return private_page(JsonResponse({"state": refused[0] if refused else "active"}))


def _campaign_unavailable_json(public_id: str) -> JsonResponse:
    status = campaign_unavailable_status(public_id=public_id)
    body = {"error": {"code": "campaign_unavailable", "message": "This campaign is not available.", "details": {}}}
    return private_page(JsonResponse(body, status=status))


@require_POST
def capture_session_open(request: HttpRequest, public_id: str) -> JsonResponse:
    """The page's "Start camera": a fresh capture session for the consenting visitor (ending the one this
    browser's page opened before) and its token, as JSON; the consent guard's refusal as a JSON 403."""
    campaign = campaign_get_public(public_id=public_id)
    if campaign is None:
        return _campaign_unavailable_json(public_id)
    subject = visitor_subject(request, key=campaign.public_id, organization=campaign.organization)
    try:
        if subject is None:
            raise ConsentRequired("This browser has not consented to face analysis.",
                                  details={"reason": DenialReason.NO_GRANT.value})
        session, token = services.capture_session_open(
            organization=campaign.organization, subject=subject, campaign=campaign,
            source=CaptureSession.Source.BROWSER_STREAM, media_ref=CAPTURE_MEDIA_REF,
        )
    except FaceAnalysisError as error:  # no or withdrawn consent, or the campaign ended
        body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
        return private_page(JsonResponse(body, status=error.status_code))
    _replace_page_session(request, campaign, session)
    body = {"session": str(session.public_id), "capture_token": token,
            "token_expires_at": session.token_expires_at.isoformat()}
    return private_page(JsonResponse(body, status=201))
