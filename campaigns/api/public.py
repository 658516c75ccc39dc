"""Public endpoints the snippets call from a partner's page, with no key: capture.js in campaign mode opens a
capture session here for a visitor who consented on the campaign's consent page.

The visitor is recognised only by the signed, HttpOnly "my data" cookie that page set on Visage's origin (sent
by the browser with a credentialed request from a same-site partner page), never by anything in the URL or the
body; and only a partner page whose Origin the campaign lists is answered (see campaigns/api/cors.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import found_or_404
from campaigns import services
from campaigns.api.cors import CorsPublicMixin, cors_origin_allowed
from campaigns.decisions import DecisionError, campaign_require_running
from campaigns.models import Campaign
from campaigns.selectors import campaign_get_by_public_id
from config.api.fields import StrictCharField
from config.api.schema import error_response
from consent.guards import DenialReason
from consent.models import Subject
from consent.visitors import visitor_subject_by_cookie
from faceanalysis.api.base import FaceAnalysisAPIView
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession

PARTNER_PAGE_MEDIA_REF = "partner-page"


class PublicCaptureSessionOpenSerializer(serializers.Serializer):
    """capture.js on a partner's page names only the campaign; who the visitor is comes from Visage's cookie."""

    campaign = StrictCharField(max_length=32, help_text="The campaign's public id.")


class PublicCaptureSessionOpenedSerializer(serializers.Serializer):
    """The opened session and the capture token the page then posts frames with (Authorization: Bearer)."""

    session = serializers.UUIDField()
    capture_token = serializers.CharField()
    token_expires_at = serializers.DateTimeField()


def cookie_subject(request: Any, campaign: Campaign) -> Subject | None:
    """The subject (of the campaign's organization) whose "my data" cookie for this campaign this browser sent."""
    return visitor_subject_by_cookie(request, key=campaign.public_id, organization_id=campaign.organization_id)


class PublicCaptureSessionOpenView(CorsPublicMixin, FaceAnalysisAPIView):
    """POST: capture.js in campaign mode ("Start camera" on a partner's page) opens a capture session for the
    visitor this browser consented as on the campaign's consent page, and gets its capture token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    domain_errors = (FaceAnalysisError, DecisionError)

    @extend_schema(
        operation_id="public_capture_session_open",
        request=PublicCaptureSessionOpenSerializer,
        responses={
            201: PublicCaptureSessionOpenedSerializer,
            401: error_response("This browser sent no valid consent cookie for the campaign."),
            403: error_response("The Origin is not one the campaign allows, or the visitor's consent is not live."),
            404: error_response("No such campaign."),
            409: error_response("The campaign is not running or has ended."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = PublicCaptureSessionOpenSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = found_or_404(
            campaign_get_by_public_id(public_id=payload.validated_data["campaign"]), message="No such campaign."
        )
        self.cors_origin = cors_origin_allowed(request, campaign)
        if self.cors_origin is None:
            raise FaceAnalysisError("This page's origin may not use the campaign.", code="origin_not_allowed",
                                    status_code=403)
        campaign_require_running(campaign)
        subject = cookie_subject(request, campaign)
        if subject is None:
            raise FaceAnalysisError(
                "This browser has not consented on the campaign's page.", code="authentication_failed",
                status_code=401, details={"reason": DenialReason.NO_GRANT.value},
            )
        session, token = services.capture_session_open(
            organization=campaign.organization, subject=subject, campaign=campaign,
            source=CaptureSession.Source.BROWSER_STREAM, media_ref=PARTNER_PAGE_MEDIA_REF,
        )
        body = {"session": str(session.public_id), "capture_token": token,
                "token_expires_at": session.token_expires_at.isoformat()}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store, private"
        return response
