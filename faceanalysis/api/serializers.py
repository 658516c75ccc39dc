"""Shapes of the face-analysis API: capture sessions, frames and their features.

Serializers named `...Shape` only document what a view answers (the OpenAPI schema); the views render those
dicts as they are.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import StrictCharField, StrictUUIDField
from consent import derived
from consent.api.serializers import PurposeField
from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.models import CaptureSession, Frame, FrameFeatures


def _share(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0, help_text=help_text)


class ReactionSummaryShape(serializers.Serializer):
    """Reactions over a set of analysed frames (definitions in faceanalysis.aggregates); null shares when no
    frame counted."""

    frames_analyzed = serializers.IntegerField(required=False, min_value=0)
    frames_counted = serializers.IntegerField(
        required=False, min_value=0, help_text="Analysed frames whose largest face passed the quality gate."
    )
    attention_share = _share("Counting frames looking at the screen, of all counting frames.")
    mean_attention_score = _share("Mean attention score of the counting frames.")
    smile_share = _share("Counting frames with a smile of at least 0.5, of all counting frames.")
    expression_distribution = serializers.DictField(
        child=serializers.FloatField(min_value=0.0, max_value=1.0), required=False,
        help_text=f"Share of each apparent expression ({', '.join(EXPRESSION_LABELS)}); empty without any.",
    )


class SessionAggregatesShape(ReactionSummaryShape):
    """A session's reactions so far; `{}` until its first frame is analysed."""

    blinks = serializers.IntegerField(required=False, min_value=0)
    seconds_observed = serializers.FloatField(required=False, min_value=0.0)
    blink_rate_per_minute = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, help_text="Null under 10 seconds observed."
    )
    quality_rejection_share = _share("Analysed frames without a counting face, of all analysed frames.")


class TimelineBucketShape(ReactionSummaryShape):
    """The reactions of the frames whose media time falls in [start_s, end_s)."""

    start_s = serializers.FloatField(min_value=0.0)
    end_s = serializers.FloatField(min_value=0.0)


class TimelineShape(serializers.Serializer):
    """A session's reactions bucketed by media time; buckets without frames are left out."""

    session = serializers.UUIDField()
    media_ref = serializers.CharField(allow_blank=True)
    bucket_seconds = serializers.FloatField(min_value=0.05, max_value=3600)
    buckets = TimelineBucketShape(many=True)


class FrameCountsShape(serializers.Serializer):
    """How many of a session's frames are in each status."""

    queued = serializers.IntegerField(min_value=0)
    analyzed = serializers.IntegerField(min_value=0)
    dropped = serializers.IntegerField(min_value=0)
    failed = serializers.IntegerField(min_value=0)
    expired = serializers.IntegerField(min_value=0)


class LatencyShape(serializers.Serializer):
    """Intake-to-features latency of the frames analysed in the window, in milliseconds."""

    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField(min_value=0)


class ProblemFrameShape(serializers.Serializer):
    """A frame that was not analysed, and why."""

    frame = serializers.UUIDField()
    session = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Frame.Status.choices)
    reason = serializers.CharField(allow_blank=True)
    received_at = serializers.DateTimeField()


_COUNTS_BY_REASON = serializers.DictField(child=serializers.IntegerField(min_value=0))


class PipelineStatsShape(serializers.Serializer):
    """The organization's pipeline over the last `window_seconds`."""

    window_seconds = serializers.IntegerField(min_value=1, max_value=86400)
    queued_now = serializers.IntegerField(min_value=0)
    received_in_window = serializers.IntegerField(min_value=0)
    analyzed_per_second_last_minute = serializers.FloatField(min_value=0.0)
    latency_ms = LatencyShape()
    outcomes = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField(min_value=0)),
        help_text="Per frame status, the frames received in the window by reason.",
    )
    failures_by_reason = serializers.DictField(child=serializers.IntegerField(min_value=0))
    dropped_for_consent = serializers.IntegerField(min_value=0)
    expired = serializers.IntegerField(min_value=0)
    recent_problems = ProblemFrameShape(many=True)
    broker_queue_depths = serializers.DictField(
        child=serializers.IntegerField(min_value=0), required=False, allow_null=True,
        help_text="Superusers only: messages waiting per queue, all organizations; null without a Redis broker.",
    )


_MODEL_VERSIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "The models that produced these features.",
    "items": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"}},
        "required": ["key", "name", "version"],
    },
}

_NULLABLE_OBJECT: dict[str, Any] = {"type": "object", "nullable": True, "additionalProperties": {}}

_FACES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Every face the engine found, largest first (no landmarks, no embedding).",
    "items": {
        "type": "object",
        "properties": {
            "box": {
                "type": "object",
                "properties": {name: {"type": "number"} for name in ("x", "y", "width", "height")},
                "required": ["x", "y", "width", "height"],
            },
            "detection_score": {"type": "number"},
            "quality": {"type": "object", "additionalProperties": {}},
            **{name: _NULLABLE_OBJECT for name in ("pose", "gaze", "eyes", "blendshapes", "expression", "age",
                                                   "gender")},
            "withheld": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"attribute": {"type": "string"}, "reason": {"type": "string"}},
                    "required": ["attribute", "reason"],
                },
            },
        },
        "required": ["box", "detection_score", "quality"],
    },
}


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
    required_purposes = serializers.ListField(
        source="required_purpose_list", child=serializers.CharField(), read_only=True,
        help_text="Purposes every frame needs live consent to (the campaign's choice at the start).",
    )
    derived_attributes = serializers.SerializerMethodField(
        help_text="What is derived from the frames (see the notice); nothing else is computed or kept."
    )
    end_reason = serializers.ChoiceField(
        choices=CaptureSession.EndReason.choices, allow_blank=True, read_only=True,
        help_text="Why the session ended; empty while it is open.",
    )
    aggregates = serializers.SerializerMethodField()
    frames = serializers.SerializerMethodField()

    class Meta:
        model = CaptureSession
        fields = [
            "id", "subject", "campaign", "purposes", "required_purposes", "derived_attributes", "source", "media_ref",
            "started_at", "ended_at", "end_reason", "token_expires_at", "aggregates", "aggregates_updated_at", "frames",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=PurposeField(), help_text="The purposes consented at the start."))
    def get_purposes(self, session: CaptureSession) -> list[str]:
        return [p for p in session.purposes.split(",") if p]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_derived_attributes(self, session: CaptureSession) -> list[str]:
        return [a.key for a in derived.DERIVED_ATTRIBUTES if a.key in session.derived_attribute_set]

    @extend_schema_field(SessionAggregatesShape)
    def get_aggregates(self, session: CaptureSession) -> dict[str, Any]:
        return session.aggregates

    @extend_schema_field(FrameCountsShape(allow_null=True, help_text="Frame counts; null in lists of sessions."))
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

    quality_reasons = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Every quality check the largest face failed."
    )
    expression = serializers.ChoiceField(
        choices=EXPRESSION_LABELS, allow_blank=True, read_only=True,
        help_text="The largest face's apparent expression; empty without a face or an expression model.",
    )
    faces = serializers.SerializerMethodField()
    model_versions = serializers.SerializerMethodField()

    class Meta:
        model = FrameFeatures
        fields = [
            "face_count", "quality_ok", "quality_reasons", "attention_score", "looking_at_screen", "eyes_open",
            "smile", "expression", "expression_confidence", "faces", "model_versions", "analyzed_at", "latency_ms",
        ]
        read_only_fields = fields

    @extend_schema_field(_FACES_SCHEMA)
    def get_faces(self, features: FrameFeatures) -> list[dict[str, Any]]:
        return features.faces

    @extend_schema_field(_MODEL_VERSIONS_SCHEMA)
    def get_model_versions(self, features: FrameFeatures) -> list[dict[str, Any]]:
        return features.model_versions


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

    @extend_schema_field(FrameFeaturesSerializer(allow_null=True, help_text="Null until the frame is analysed."))
    def get_features(self, frame: Frame) -> dict[str, Any] | None:
        features = getattr(frame, "features", None) if frame.status == Frame.Status.ANALYZED else None
        return FrameFeaturesSerializer(features).data if features is not None else None


class FramesAcceptedSerializer(serializers.Serializer):
    """202: the frames were accepted and queued."""

    session = serializers.UUIDField()
    frame_ids = serializers.ListField(child=serializers.UUIDField())
