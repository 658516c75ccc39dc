"""Face-analysis API views: thin; they parse, call one service or selector, and render.

A capture token opens only its own session (views with `capture_token_allowed`); any other session, like a
missing one or another organization's, is the same 404. Opening a session needs a campaign, so the two views that
do live with campaigns (`campaigns/api/views.py`), above this app.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.parsers import StrictJSONParser
from config.api.schema import error_response
from faceanalysis import selectors
from faceanalysis.api import schema
from faceanalysis.api.base import FaceAnalysisAPIView
from faceanalysis.api.parsing import frames_from_request, query_number, video_from_request
from faceanalysis.api.serializers import (
    CaptureSessionSerializer,
    FramesAcceptedSerializer,
    FrameSerializer,
    PipelineStatsShape,
    TimelineShape,
)
from faceanalysis.models import CaptureSession
from faceanalysis.services import capture, intake


def _session_body(session: CaptureSession, **context: Any) -> dict[str, Any]:
    return CaptureSessionSerializer(
        session, context={"frame_counts": selectors.frame_status_counts(session=session), **context}
    ).data


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
