"""Face-analysis API views: thin; they parse, call one service or selector, and render.

A capture token opens only its own session (views with `capture_token_allowed`); any other session, like a
missing one or another organization's, is the same 404.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.api.base import OrganizationAPIView
from accounts.models import Organization
from accounts.permissions import HasOrganization
from campaigns.selectors import campaign_list
from config.api.parsers import StrictJSONParser
from config.api.schema import error_response
from consent.selectors import subject_get, subject_get_by_access_token
from faceanalysis import selectors
from faceanalysis.api import schema
from faceanalysis.api.authentication import CaptureCredential, CaptureTokenAuthentication
from faceanalysis.api.parsing import frames_from_request, query_number, video_from_request
from faceanalysis.api.serializers import (
    CaptureSessionSerializer,
    CaptureSessionStartedSerializer,
    CaptureSessionStartSerializer,
    EndUserSessionStartSerializer,
    FramesAcceptedSerializer,
    FrameSerializer,
    PipelineStatsShape,
    TimelineShape,
)
from faceanalysis.errors import FaceAnalysisError
from faceanalysis.models import CaptureSession
from faceanalysis.services import capture, intake


class FaceAnalysisAPIError(exceptions.APIException):
    """A domain error rendered in the one error shape with its own status and code."""

    def __init__(self, error: FaceAnalysisError) -> None:
        self.status_code = error.status_code
        super().__init__(detail=error.message, code=error.code)
        self.details = error.details


class HasOrganizationOrCaptureToken(BasePermission):
    """API keys and members as everywhere; a capture token only on views that take one."""

    message = HasOrganization.message

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, CaptureCredential):
            return bool(getattr(view, "capture_token_allowed", False))
        allowed = HasOrganization()
        result = allowed.has_permission(request, view)
        self.message = allowed.message
        return result


class FaceAnalysisAPIView(OrganizationAPIView):
    """Base of the face-analysis views: capture tokens accepted where allowed, domain errors rendered."""

    authentication_classes = [CaptureTokenAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    permission_classes = [HasOrganizationOrCaptureToken]
    capture_token_allowed = False

    @property
    def organization(self) -> Organization:
        if isinstance(self.request.auth, CaptureCredential):
            return self.request.auth.session.organization
        return super().organization

    def get_session(self, session_id: UUID) -> CaptureSession:
        """The caller's session; a token's own only. Missing and foreign are the same 404."""
        if isinstance(self.request.auth, CaptureCredential):
            session = self.request.auth.session
            if str(session.public_id) != str(session_id):
                raise Http404
            return session
        session = selectors.capture_session_get(organization=self.organization, public_id=session_id)
        if session is None:
            raise Http404
        return session

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, FaceAnalysisError):
            exc = FaceAnalysisAPIError(exc)
        response = super().handle_exception(exc)
        if isinstance(exc, FaceAnalysisAPIError) and exc.details:
            response.data["error"]["details"] = exc.details
            if exc.status_code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE):
                response["Retry-After"] = str(exc.details.get("retry_after_seconds", 1))
        return response


def _session_body(session: CaptureSession, **context: Any) -> dict[str, Any]:
    return CaptureSessionSerializer(
        session, context={"frame_counts": selectors.frame_status_counts(session=session), **context}
    ).data


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
        subject = subject_get(organization=self.organization, public_id=data["subject"])
        campaign = campaign_list(organization=self.organization).filter(public_id=data["campaign"]).first()
        if subject is None or campaign is None:
            raise exceptions.NotFound("No such subject or campaign.")
        session, token = capture.capture_session_start(
            organization=self.organization, subject=subject, campaign=campaign, source=data["source"],
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
        campaign = campaign_list(organization=subject.organization).filter(public_id=data["campaign"]).first()
        if campaign is None:
            raise exceptions.NotFound("No such campaign.")
        session, token = capture.capture_session_start(
            organization=subject.organization, subject=subject, campaign=campaign, source=data["source"],
            media_ref=data["media_ref"],
        )
        return Response(_started_body(session, token), status=status.HTTP_201_CREATED)


class CaptureSessionDetailView(FaceAnalysisAPIView):
    """GET: one session with its aggregates and frame counts (capture token or key)."""

    capture_token_allowed = True

    @extend_schema(responses=CaptureSessionSerializer)
    def get(self, request: Request, session_id: UUID) -> Response:
        return Response(_session_body(self.get_session(session_id)))


class CaptureSessionEndView(FaceAnalysisAPIView):
    """POST: end the session; frames already queued are still analysed."""

    capture_token_allowed = True

    @extend_schema(request=None, responses=CaptureSessionSerializer)
    def post(self, request: Request, session_id: UUID) -> Response:
        session = capture.capture_session_end(session=self.get_session(session_id))
        return Response(_session_body(session))


class FrameIntakeView(FaceAnalysisAPIView, ListAPIView):
    """POST: one frame (raw image body) or a small batch (multipart or JSON base64). 202 with frame ids; the
    analysis follows in a worker. GET: the session's frames with their features, a page at a time."""

    serializer_class = FrameSerializer
    parser_classes = [StrictJSONParser, MultiPartParser]
    capture_token_allowed = True
    request_body_required = True
    # Intake has its own bound (frames per session per second); the general per-caller rate would cap it.
    throttle_classes: list[Any] = []

    @extend_schema(
        request=schema.frame_upload_bodies(),
        parameters=schema.FRAME_HEADERS,
        responses={
            202: FramesAcceptedSerializer,
            400: error_response("A frame is not a JPEG, PNG or WebP image of a size accepted, or a field is invalid."),
            403: error_response("The subject's face-analysis consent is not live; nothing was kept."),
            409: error_response("The session has ended."),
            413: error_response("The body, a frame, or the number of frames is larger than accepted."),
            429: error_response("More frames per second than a session may send."),
            503: error_response("The frame store or the broker is unavailable; nothing was kept."),
        },
    )
    def post(self, request: Request, session_id: UUID) -> Response:
        session = self.get_session(session_id)
        frames = intake.frame_intake(session=session, frames=frames_from_request(request))
        return Response(
            {"session": str(session.public_id), "frame_ids": [str(f.public_id) for f in frames]},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses=FrameSerializer(many=True))
    def get(self, request: Request, session_id: UUID) -> Response:
        return self.list(request)

    def get_queryset(self):
        return selectors.frame_list(organization=self.organization, session=self.get_session(self.kwargs["session_id"]))


class VideoIntakeView(FaceAnalysisAPIView):
    """POST: a video (MP4/WebM) sampled at `sample_fps`; every sample is a frame with its media time. 202."""

    parser_classes = [StrictJSONParser, MultiPartParser]
    capture_token_allowed = True
    request_body_required = True
    throttle_classes: list[Any] = []

    @extend_schema(
        request=schema.video_upload_bodies(),
        parameters=[schema.sample_fps_parameter()],
        responses={
            202: FramesAcceptedSerializer,
            400: error_response("Not an MP4 or WebM video that decodes, or a field is invalid."),
            403: error_response("The subject's face-analysis consent is not live; nothing was kept."),
            409: error_response("The session has ended."),
            413: error_response("The video is larger or longer than accepted."),
            429: error_response("More frames per second than a session may send."),
            503: error_response("The frame store or the broker is unavailable; nothing was kept."),
        },
    )
    def post(self, request: Request, session_id: UUID) -> Response:
        session = self.get_session(session_id)
        data, declared, sample_fps = video_from_request(request)
        frames = intake.video_intake(session=session, data=data, declared_type=declared, sample_fps=sample_fps)
        return Response(
            {"session": str(session.public_id), "frame_ids": [str(f.public_id) for f in frames]},
            status=status.HTTP_202_ACCEPTED,
        )


class CaptureSessionTimelineView(FaceAnalysisAPIView):
    """GET: the session's reactions bucketed by media time (`bucket` seconds, default 1)."""

    capture_token_allowed = True

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "bucket", {"type": "number", "minimum": 0.05, "maximum": 3600, "default": 1},
                description="Bucket width in seconds.",
            )
        ],
        responses=TimelineShape,
    )
    def get(self, request: Request, session_id: UUID) -> Response:
        session = self.get_session(session_id)
        bucket = query_number(request, "bucket", default=1.0, minimum=0.05, maximum=3600)
        return Response(
            {"session": str(session.public_id), "media_ref": session.media_ref, "bucket_seconds": bucket,
             "buckets": selectors.session_timeline(session=session, bucket_seconds=bucket)}
        )


class PipelineStatsView(FaceAnalysisAPIView):
    """GET: the organization's pipeline: frames waiting, throughput, latency, failures by reason,
    dropped-for-consent and expired counts. Broker queue depths (all tenants) for superusers only."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "window", {"type": "integer", "minimum": 1, "maximum": 86400, "default": 300},
                description="Seconds to look back.",
            )
        ],
        responses=PipelineStatsShape,
    )
    def get(self, request: Request) -> Response:
        window = int(query_number(request, "window", default=300, minimum=1, maximum=86400, whole=True))
        with transaction.atomic():
            stats = selectors.pipeline_stats(
                organization=self.organization, window_seconds=window,
                include_broker=bool(getattr(request.user, "is_superuser", False)),
            )
        return Response(stats)
