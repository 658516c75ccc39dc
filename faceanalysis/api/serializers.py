"""Shapes of the face-analysis API: capture sessions, frames and their features."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api.fields import StrictCharField, StrictUUIDField
from faceanalysis.models import CaptureSession, Frame, FrameFeatures


class CaptureSessionStartSerializer(serializers.Serializer):
    """A partner opens a capture session for a consented subject."""

    subject = StrictUUIDField(help_text="The subject's public id.")
    campaign = StrictCharField(max_length=32, help_text="The campaign's public id.")
    source = serializers.ChoiceField(choices=CaptureSession.Source.choices, default=CaptureSession.Source.PARTNER)
    media_ref = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class EndUserSessionStartSerializer(serializers.Serializer):
    """An end user's page opens a capture session with the subject's token from the consent flow."""

    access_token = StrictCharField(max_length=128, help_text='The subject\'s "my data" token.')
    campaign = StrictCharField(max_length=32, help_text="The campaign's public id.")
    source = serializers.ChoiceField(
        choices=CaptureSession.Source.choices, default=CaptureSession.Source.BROWSER_STREAM
    )
    media_ref = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class CaptureSessionSerializer(serializers.ModelSerializer):
    """A capture session with its aggregates and how many frames are in each status."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    subject = serializers.UUIDField(source="subject.public_id", read_only=True)
    campaign = serializers.CharField(source="campaign.public_id", read_only=True)
    purposes = serializers.SerializerMethodField()
    frames = serializers.SerializerMethodField()

    class Meta:
        model = CaptureSession
        fields = [
            "id", "subject", "campaign", "purposes", "source", "media_ref", "started_at", "ended_at", "end_reason",
            "token_expires_at", "aggregates", "aggregates_updated_at", "frames",
        ]
        read_only_fields = fields

    def get_purposes(self, session: CaptureSession) -> list[str]:
        return [p for p in session.purposes.split(",") if p]

    def get_frames(self, session: CaptureSession) -> dict[str, int] | None:
        counts = self.context.get("frame_counts")
        return counts if counts is not None else None


class CaptureSessionStartedSerializer(CaptureSessionSerializer):
    """The new session and its capture token (shown this once)."""

    capture_token = serializers.SerializerMethodField()

    class Meta(CaptureSessionSerializer.Meta):
        fields = [*CaptureSessionSerializer.Meta.fields, "capture_token"]
        read_only_fields = fields

    def get_capture_token(self, session: CaptureSession) -> str:
        return self.context["capture_token"]


class FrameFeaturesSerializer(serializers.ModelSerializer):
    """Derived features of one frame."""

    class Meta:
        model = FrameFeatures
        fields = [
            "face_count", "quality_ok", "quality_reasons", "attention_score", "looking_at_screen", "eyes_open",
            "smile", "expression", "expression_confidence", "faces", "model_versions", "analyzed_at", "latency_ms",
        ]
        read_only_fields = fields


class FrameSerializer(serializers.ModelSerializer):
    """A frame's passage through the pipeline and, once analysed, its features."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    features = serializers.SerializerMethodField()

    class Meta:
        model = Frame
        fields = [
            "id", "status", "reason", "origin", "content_type", "byte_size", "width", "height", "captured_at",
            "media_time_ms", "received_at", "finished_at", "features",
        ]
        read_only_fields = fields

    def get_features(self, frame: Frame) -> dict[str, Any] | None:
        features = getattr(frame, "features", None) if frame.status == Frame.Status.ANALYZED else None
        return FrameFeaturesSerializer(features).data if features is not None else None


class FramesAcceptedSerializer(serializers.Serializer):
    """202: the frames were accepted and queued."""

    session = serializers.UUIDField()
    frame_ids = serializers.ListField(child=serializers.UUIDField())
