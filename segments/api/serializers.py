"""What the segments API answers (a segment, its members, runs, exports and matches) and what it reads. Request
bodies are strict (a member they do not declare is a 400); the definition tree itself is checked by
segments.conditions, whose refusals name the node (`definition.all[1].window_seconds`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api.fields import StrictCharField, StrictRegexField, StrictSerializer
from segments.models import KEY_MAX_LENGTH, Segment, SegmentMembership, SegmentRun
from segments.services import KEY_PATTERN, MAX_MATCH_IDS, MAX_PARTNER_ID_LENGTH, MAX_UPLOAD_IDS


class DefinitionField(serializers.JSONField):
    """A condition tree, read as JSON and checked by segments.conditions (in the schema: segments.api.schema; the
    vocabulary with its ranges is also at GET /api/v1/segments/fields/). A static segment without one (an
    uploaded list) shows null."""

    def to_representation(self, value: Any) -> Any:
        return value or None


class LedgerEntryRefSerializer(serializers.Serializer):
    """The ledger entry that records an export: its place in the organization's chain and its hash."""

    sequence = serializers.IntegerField(min_value=1)
    hash = serializers.CharField()


class SegmentSerializer(serializers.ModelSerializer):
    definition = DefinitionField(read_only=True, allow_null=True)

    class Meta:
        model = Segment
        fields = [
            "key", "name", "description", "kind", "definition", "face_based", "emotion_based", "size",
            "cadence_seconds", "last_run_at", "last_run_ms", "next_run_at", "created_at", "updated_at",
        ]
        read_only_fields = fields


class SegmentRequest(StrictSerializer):
    """A segment to create (key, name and, for a dynamic one, a definition), or the members of one to change."""

    key = StrictRegexField(KEY_PATTERN.pattern, max_length=KEY_MAX_LENGTH,
                           help_text="Lower-case letters, digits, - and _; not `preview` or `fields`.")
    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, required=False,
                                   help_text="Default dynamic; cannot change (409).")
    definition = DefinitionField(required=False, allow_null=True, help_text="Required for a dynamic segment; a "
                                 "static one may have none (null: its members come from an upload).")


class PreviewRequest(StrictSerializer):
    definition = DefinitionField()


class PreviewSerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=0, help_text="Subjects that meet the definition now.")


class MemberSerializer(serializers.ModelSerializer):
    subject_id = serializers.UUIDField(source="subject.public_id", help_text="The subject's pseudonymous id.")

    class Meta:
        model = SegmentMembership
        fields = ["subject_id", "entered_at"]
        read_only_fields = fields


class HistorySerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When the run started.")
    size = serializers.IntegerField(min_value=0)
    entered = serializers.IntegerField(min_value=0)
    exited = serializers.IntegerField(min_value=0)
    kind = serializers.ChoiceField(choices=SegmentRun.Kind.choices)


class RunSerializer(serializers.ModelSerializer):
    details = serializers.DictField(child=serializers.IntegerField(), read_only=True,
                                    help_text="An upload's counts: ids, matched, unmatched.")

    class Meta:
        model = SegmentRun
        fields = ["kind", "started_at", "duration_ms", "size", "entered", "exited", "details"]
        read_only_fields = fields


class ExportRowSerializer(serializers.Serializer):
    subject_id = serializers.UUIDField()
    entered_at = serializers.DateTimeField()
    partner_linked = serializers.BooleanField(help_text="The partner knows the subject by its own user id: map "
                                              "it back with POST …/match/.")


class ExportSerializer(serializers.Serializer):
    segment = serializers.CharField()
    count = serializers.IntegerField(min_value=0)
    ledger_entry = LedgerEntryRefSerializer()
    members = ExportRowSerializer(many=True)


class MatchRequest(StrictSerializer):
    partner_user_ids = serializers.ListField(
        child=StrictCharField(max_length=MAX_PARTNER_ID_LENGTH, trim_whitespace=False), min_length=1,
        max_length=MAX_MATCH_IDS, help_text="Your own user ids; hashed in memory and never kept.",
    )


class MatchSerializer(serializers.Serializer):
    matched = serializers.ListField(child=serializers.CharField(), help_text="Those of your ids that are members "
                                    "with live partner-sharing consent, sorted.")
    count = serializers.IntegerField(min_value=0)
    ledger_entry = LedgerEntryRefSerializer()


class UploadRequest(StrictSerializer):
    ids = serializers.ListField(
        child=StrictCharField(max_length=MAX_PARTNER_ID_LENGTH, trim_whitespace=False),
        min_length=1, max_length=MAX_UPLOAD_IDS,
        help_text="Your own user ids, none twice; the segment's members become the subjects you know by them.",
    )


class RecomputeSerializer(serializers.Serializer):
    queued = serializers.BooleanField(help_text="False when the broker refused; beat runs it when due.")
