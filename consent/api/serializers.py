"""Shapes of the partner consent API. A partner's user id comes in, and never goes out or into storage."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import StrictCharField
from consent import derived
from consent.guards import GrantState, grant_state
from consent.models import DataRequest, Grant, LedgerEntry, NoticeVersion, OutboxEvent, PurgePart, Purpose, Subject
from consent.selectors import data_request_parts


# A pattern rather than an enum: the schema keeps one plain definition wherever a purpose appears.
@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(Purpose.values)})$",
        "description": f"A consent purpose: {', '.join(Purpose.values)}.",
    }
)
class PurposeField(serializers.ChoiceField):
    """One consent purpose; the same inline enum wherever it appears in the schema."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=Purpose.choices, **kwargs)


class SubjectFindOrCreateSerializer(serializers.Serializer):
    partner_user_id = StrictCharField(
        max_length=256, trim_whitespace=False, help_text="Your own user id; only a keyed hash of it is kept."
    )


class SubjectSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    erased = serializers.BooleanField(source="is_erased", read_only=True)

    class Meta:
        model = Subject
        fields = ["id", "created_at", "erased"]
        read_only_fields = fields


class GrantStateField(serializers.ChoiceField):
    """A grant's state as consent.guards.grant_state reads it: `active` exactly where the consent guard says yes."""

    def __init__(self, **kwargs) -> None:
        states = [s.value for s in GrantState if s != GrantState.NONE]
        super().__init__(choices=states, source="*", read_only=True, **kwargs)

    def to_representation(self, grant: Grant) -> str:
        return grant_state(grant).value


class GrantSerializer(serializers.ModelSerializer):
    purpose = PurposeField(read_only=True)
    state = GrantStateField(help_text="Only `active` allows processing.")
    end_reason = serializers.ChoiceField(
        choices=Grant.EndReason.choices, allow_blank=True, read_only=True,
        help_text="Why the grant ended; empty while it is open.",
    )

    class Meta:
        model = Grant
        fields = [
            "id",
            "purpose",
            "state",
            "notice_hash",
            "language",
            "channel",
            "context_ref",
            "granted_at",
            "expires_at",
            "ended_at",
            "end_reason",
        ]
        read_only_fields = fields


class PurposeStateSerializer(serializers.Serializer):
    purpose = PurposeField()
    state = serializers.ChoiceField(
        choices=[s.value for s in GrantState], help_text="Only `active` allows processing; `none`: never granted."
    )
    grant = GrantSerializer(allow_null=True)


class SubjectConsentSerializer(serializers.Serializer):
    subject = SubjectSerializer()
    consent = PurposeStateSerializer(many=True)


class GrantCreateSerializer(serializers.Serializer):
    purposes = serializers.ListField(child=PurposeField(), allow_empty=False, max_length=len(Purpose.values))
    notice_hash = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="SHA-256 of the exact notice text your UI showed (from GET /consent/notices/)."
    )
    language = serializers.ChoiceField(choices=settings.LANGUAGES)
    ip_address = serializers.IPAddressField(
        required=False, help_text="The end user's address; only its /24 (IPv4) or /48 (IPv6) network is kept."
    )
    user_agent = StrictCharField(
        required=False, max_length=1000, help_text="The end user's browser; only its class is kept."
    )


class WithdrawSerializer(serializers.Serializer):
    purposes = serializers.ListField(
        child=PurposeField(),
        required=False,
        allow_empty=False,
        max_length=len(Purpose.values),
        help_text="Purposes to withdraw; all when omitted.",
    )


class WithdrawResultSerializer(serializers.Serializer):
    withdrawn = GrantSerializer(many=True)
    consent = PurposeStateSerializer(many=True)


class NoticeSerializer(serializers.ModelSerializer):
    purposes = serializers.ListField(source="purpose_list", child=serializers.CharField(), read_only=True)
    derived_attributes = serializers.SerializerMethodField(
        help_text="What is derived from faces under this notice (consent.derived keys); a grant covers no more."
    )

    class Meta:
        model = NoticeVersion
        fields = [
            "text_hash", "language", "purposes", "derived_attributes", "version", "status", "published_at", "text"
        ]
        read_only_fields = fields

    def get_derived_attributes(self, notice: NoticeVersion) -> list[str]:
        return [a.key for a in derived.DERIVED_ATTRIBUTES if a.key in notice.derived_attribute_set]


class LedgerEntrySerializer(serializers.ModelSerializer):
    purposes = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "sequence",
            "event",
            "occurred_at",
            "purposes",
            "notice_hash",
            "language",
            "channel",
            "context_ref",
            "evidence",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields

    def get_purposes(self, entry: LedgerEntry) -> list[str]:
        return [p for p in entry.purposes.split(",") if p]


# --- The partner event feed ---------------------------------------------------------------------------------------


class OutboxEventSerializer(serializers.ModelSerializer):
    id = serializers.SerializerMethodField(help_text="The event's sequence in your organization's feed, in commit "
                                           "order; pass the last one you stored as `after`.")
    type = serializers.ChoiceField(choices=OutboxEvent.Type.choices, read_only=True)
    subject = serializers.SerializerMethodField(help_text="The subject's public id; null when none (or erased).")
    data = serializers.JSONField(source="payload", read_only=True,
                                 help_text="Ids and counts only, by type (docs/data-rights.md).")

    class Meta:
        model = OutboxEvent
        fields = ["id", "type", "occurred_at", "subject", "data"]
        read_only_fields = fields

    def get_id(self, event: OutboxEvent) -> str:
        return str(event.sequence)

    @extend_schema_field({"type": "string", "format": "uuid", "nullable": True})
    def get_subject(self, event: OutboxEvent) -> str | None:
        return event.subject_ref or None


class EventFeedSerializer(serializers.Serializer):
    results = OutboxEventSerializer(many=True, read_only=True)
    next = serializers.CharField(read_only=True, help_text="The cursor to pass as `after` for the next page; the "
                                 "same as `after` when no event was returned.")
    has_more = serializers.BooleanField(read_only=True, help_text="More events wait after this page.")


# --- The retention schedule ---------------------------------------------------------------------------------------


class RetentionCategorySerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The category (consent.retention.CATEGORIES).")
    label = serializers.CharField()
    covers = serializers.CharField(help_text="What the category covers, in words.")
    period = serializers.IntegerField(min_value=1, help_text="How long it is kept at most, in `unit`.")
    unit = serializers.ChoiceField(choices=["seconds", "days"])
    biometric = serializers.BooleanField()
    cap = serializers.IntegerField(min_value=1, help_text="The legal cap that applies, in `unit`.")
    cap_name = serializers.CharField(help_text="What imposes the cap.")


class RetentionScheduleSerializer(serializers.Serializer):
    jurisdiction = serializers.CharField()
    jurisdiction_name = serializers.CharField()
    defaults = serializers.BooleanField(help_text="True when no policy is saved: these defaults are what applies.")
    updated_at = serializers.DateTimeField(allow_null=True)
    grant_validity_days = serializers.IntegerField(min_value=1)
    categories = RetentionCategorySerializer(many=True)
class DataRequestCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=DataRequest.Kind.choices,
        help_text="access (a summary now), export (the JSON document, needs the `export` scope) or erasure.",
    )


class PurgePartSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=PurgePart.Status.choices, read_only=True)

    class Meta:
        model = PurgePart
        fields = ["purger", "status", "done_at"]
        read_only_fields = fields


class DataRequestSerializer(serializers.ModelSerializer):
    """A data subject request: state and due date (one calendar month after receipt); an erasure's parts say
    which purgers are done; an export's `links.export` streams the document."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    subject = serializers.UUIDField(source="subject_ref", read_only=True)
    kind = serializers.ChoiceField(choices=DataRequest.Kind.choices, read_only=True)
    state = serializers.ChoiceField(choices=DataRequest.State.choices, read_only=True)
    parts = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = DataRequest
        fields = ["id", "subject", "kind", "state", "channel", "requested_by", "received_at", "due_at", "started_at",
                  "completed_at", "parts", "links"]
        read_only_fields = fields

    @extend_schema_field(PurgePartSerializer(many=True))
    def get_parts(self, request: DataRequest) -> list[dict]:
        return PurgePartSerializer(data_request_parts(request=request), many=True).data

    @extend_schema_field({"type": "object", "properties": {"self": {"type": "string"}, "export": {"type": "string"}},
                          "required": ["self"]})
    def get_links(self, request: DataRequest) -> dict[str, str]:
        links = {"self": reverse("api:consent-request-detail", kwargs={"request_id": request.public_id})}
        if request.kind == DataRequest.Kind.EXPORT:
            links["export"] = reverse("api:consent-request-export", kwargs={"request_id": request.public_id})
        return links
