"""Capture-session API views that need a campaign: a partner's and an end user's page open a session in one of
the organization's campaigns. They sit here, above face analysis, and use its base view, so tokens, 404s and
error rendering are the same as on the other capture-session endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import found_or_404
from campaigns import services
from campaigns.selectors import campaign_get
from config.api.schema import error_response
from consent.selectors import subject_get, subject_get_by_access_token
from faceanalysis import selectors
from faceanalysis.api.base import FaceAnalysisAPIView
from faceanalysis.api.serializers import (
    CaptureSessionSerializer,
    CaptureSessionStartedSerializer,
    CaptureSessionStartSerializer,
    EndUserSessionStartSerializer,
)
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession


def _started_body(session: CaptureSession, token: str) -> dict[str, Any]:
    return CaptureSessionStartedSerializer(
        session, context={"frame_counts": selectors.frame_status_counts(session=session), "capture_token": token}
    ).data


class CaptureSessionListView(FaceAnalysisAPIView, ListAPIView):
    """GET: the organization's capture sessions. POST: open one for a consented subject (partner key)."""

    serializer_class = CaptureSessionSerializer

    def get_queryset(self):
        return selectors.capture_session_list(organization=self.organization)

    @extend_schema(
        request=CaptureSessionStartSerializer,
        responses={
            201: CaptureSessionStartedSerializer,
            403: error_response("The key lacks the write scope, or the subject has no live face-analysis consent."),
            404: error_response("No such subject or campaign in the organization."),
            409: error_response("The campaign has ended."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = CaptureSessionStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        missing = "No such subject or campaign."
        organization = self.organization
        subject = found_or_404(subject_get(organization=organization, public_id=data["subject"]), message=missing)
        campaign = found_or_404(campaign_get(organization=organization, public_id=data["campaign"]), message=missing)
        session, token = services.capture_session_open(
            organization=organization, subject=subject, campaign=campaign, source=data["source"],
            media_ref=data["media_ref"],
        )
        return Response(_started_body(session, token), status=status.HTTP_201_CREATED)


class EndUserSessionStartView(FaceAnalysisAPIView):
    """POST: the end user's page opens a capture session with the subject's token from the consent flow, and
    gets the capture token it then posts frames with. No partner key is involved."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="capture_session_start_by_end_user",
        request=EndUserSessionStartSerializer,
        responses={
            201: CaptureSessionStartedSerializer,
            401: error_response("Unknown or rotated access token."),
            403: error_response("The subject has no live face-analysis consent."),
            404: error_response("No such campaign in the subject's organization."),
            409: error_response("The campaign has ended."),
        },
    )
    def post(self, request: Request) -> Response:
        payload = EndUserSessionStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        subject = subject_get_by_access_token(token=data["access_token"])
        if subject is None:
            # Not DRF's AuthenticationFailed: with no authenticator here DRF would turn it into a 403.
            raise FaceAnalysisError("Unknown or rotated access token.", code="authentication_failed", status_code=401)
        campaign = found_or_404(
            campaign_get(organization=subject.organization, public_id=data["campaign"]), message="No such campaign."
        )
        session, token = services.capture_session_open(
            organization=subject.organization, subject=subject, campaign=campaign, source=data["source"],
            media_ref=data["media_ref"],
        )
        return Response(_started_body(session, token), status=status.HTTP_201_CREATED)
