"""Shapes of the campaigns API: campaigns, their variants and rules, and the condition tree.

The views render with the `...Serializer` classes; the `...Request` classes only document what a write reads
(the OpenAPI schema). Bodies are checked by the services (campaigns.services, campaigns.content), which name
the offending member by its path in every 400.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns import content, services
from campaigns.models import Campaign, Rule, Variant
from consent import derived
from consent.api.serializers import PurposeField


class ConditionField(serializers.JSONField):
    """A condition tree (the `ConditionNode` component, registered by campaigns.api.schema)."""


class VariantSerializer(serializers.ModelSerializer):
    """A variant as the API shows it; `html` is what the sanitiser kept."""

    payload = serializers.DictField(help_text="Free JSON for partners, at most 16 KB.")
    # Blank when not set, so not `format: uri` in the answer.
    image_url = serializers.CharField(help_text="An http(s) URL, or blank.")
    cta_url = serializers.CharField(help_text="An http(s) URL, or blank.")

    class Meta:
        model = Variant
        fields = ["key", "name", "headline", "body", "image_url", "cta_text", "cta_url", "payload", "html",
                  "is_default", "created_at"]
        read_only_fields = fields


class RuleSerializer(serializers.ModelSerializer):
    """A rule as the API shows it: its variant by key, its tree as stored (face-leaf defaults filled)."""

    variant = serializers.SlugRelatedField(slug_field="key", read_only=True)
    condition = ConditionField()

    class Meta:
        model = Rule
        fields = ["id", "name", "priority", "enabled", "condition", "variant", "created_at", "updated_at"]
        read_only_fields = fields


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as the API lists it."""

    public_id = serializers.CharField(read_only=True)
    required_purposes = serializers.ListField(
        child=PurposeField(), source="required_purpose_list"
    )
    optional_purposes = serializers.ListField(
        child=PurposeField(), source="optional_purpose_list"
    )
    derived_attributes = serializers.SerializerMethodField()
    allowed_origins = serializers.ListField(child=serializers.CharField(), source="allowed_origin_list")
    emotion_recognition_forbidden = serializers.BooleanField(
        help_text="The setting of use is workplace or education: expression conditions are refused (EU AI Act "
        "Art. 5(1)(f))."
    )

    class Meta:
        model = Campaign
        fields = ["public_id", "name", "status", "goal", "setting_of_use", "emotion_recognition_forbidden",
                  "required_purposes", "optional_purposes", "derived_attributes", "starts_at", "ends_at",
                  "allowed_origins", "decision_ttl_seconds", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=sorted(derived.ALL_KEYS))))
    def get_derived_attributes(self, campaign: Campaign) -> list[str]:
        return [key for key in campaign.derived_attributes.split(",") if key]


class CampaignDetailSerializer(CampaignSerializer):
    """A campaign with its variants and rules (in the order rules are tried)."""

    variants = VariantSerializer(many=True, read_only=True)
    rules = RuleSerializer(many=True, read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "variants", "rules"]
        read_only_fields = fields


# --- What the writes read (documentation; the services check) -------------------------------------------------------


def _text(max_length: int, help_text: str = "", *, required: bool = False, blank: bool = True) -> serializers.Field:
    return serializers.CharField(max_length=max_length, required=required, allow_blank=blank, help_text=help_text)


def _url(help_text: str) -> serializers.Field:
    return serializers.URLField(max_length=500, required=False, allow_blank=True, help_text=help_text)


class VariantRequest(serializers.Serializer):
    """A variant to create, or the members of one to change. HTML is sanitised on save (nh3): only harmless
    formatting tags stay, links get rel="noopener noreferrer"."""

    key = serializers.RegexField(
        content.KEY_PATTERN.pattern, max_length=64, help_text="Lower-case letters and digits joined by - or _; "
        "unique in the campaign. Required on create."
    )
    name = _text(200, "Required on create.", required=True, blank=False)
    headline = _text(300)
    body = _text(5000)
    image_url = _url("http:// or https:// only.")
    cta_text = _text(100)
    cta_url = _url("http:// or https:// only.")
    payload = serializers.DictField(required=False, help_text="A JSON object of at most 16 KB.")
    html = _text(content.HTML_MAX_LENGTH, "Sanitised on save; the answer shows what was kept.")
    is_default = serializers.BooleanField(
        required=False, help_text="Making a variant the default unsets the campaign's other default; the default "
        "cannot be unset, only replaced. A campaign's first variant is its default."
    )


class RuleRequest(serializers.Serializer):
    """A rule to create, or the members of one to change."""

    name = _text(200, "Required on create.", required=True, blank=False)
    priority = serializers.IntegerField(
        min_value=0, max_value=content.MAX_PRIORITY, required=False, help_text="Lower runs first; default 100."
    )
    enabled = serializers.BooleanField(required=False, help_text="Default true.")
    condition = ConditionField(help_text="Required on create.")
    variant = serializers.CharField(max_length=64, help_text="Key of a variant of the same campaign. Required on "
                                    "create.")


class ContentRuleRequest(RuleRequest):
    """A rule in a campaign body's `rules` list: the whole rule; `id` of one of the campaign's rules changes it
    in place, else it is new."""

    id = serializers.IntegerField(required=False, min_value=1)


class CampaignRequest(serializers.Serializer):
    """A campaign to create (name and required_purposes at least), or the members of one to change. `variants`
    and `rules`, when given, replace the campaign's whole content in the same transaction: variants matched by
    key, exactly one of them the default; rules naming their variant by key."""

    name = _text(200, "Required on create.", required=True, blank=False)
    status = serializers.ChoiceField(
        choices=Campaign.Status.choices, required=False,
        help_text="Moves along: draft → scheduled, running, ended; scheduled → draft, running, paused, ended; "
        "running → paused, ended; paused → running, scheduled, ended; ended is final (409 otherwise). Scheduled "
        "and running need a ready consent page and a default variant (409 `campaign_not_ready`); scheduled needs "
        "starts_at.",
    )
    goal = serializers.ChoiceField(choices=Campaign.Goal.choices, required=False)
    setting_of_use = serializers.ChoiceField(
        choices=Campaign.SettingOfUse.choices, required=False,
        help_text="Workplace and education forbid emotion recognition: refused while expression rules exist.",
    )
    required_purposes = serializers.ListField(
        child=PurposeField(), max_length=40,
        help_text="Purposes the camera needs; face_analysis among them. Required on create.",
    )
    optional_purposes = serializers.ListField(
        child=PurposeField(), max_length=40, required=False
    )
    derived_attributes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(derived.ALL_KEYS)), max_length=40, required=False,
        help_text="What is derived from faces; the core attributes are always added.",
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True, help_text="After starts_at.")
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=services.MAX_ALLOWED_ORIGINS, required=False,
        help_text="Origins (scheme://host[:port], http or https, no path) of the partner pages that may ask for "
        "decisions with personalize.js.",
    )
    decision_ttl_seconds = serializers.IntegerField(
        min_value=0, max_value=services.MAX_DECISION_TTL_SECONDS, required=False
    )
    variants = VariantRequest(many=True, required=False, max_length=100)
    rules = ContentRuleRequest(many=True, required=False, max_length=200)


def representation(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """`instance` rendered by `serializer_class`."""
    return serializer_class(instance).data
