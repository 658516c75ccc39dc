"""Shapes of the decision and event endpoints. Strict: a field the operation does not know is a 400, as is a value of
another JSON type than documented."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.decisions import CLIENT_EVENT_ID, CURRENCY, EVENT_NAME, VALUE_LIMIT, VALUE_STEP, VISITOR_ID
from campaigns.models import Decision, Event, Variant
from config.api.fields import StrictCharField, StrictRegexField, StrictSerializer, StrictUUIDField


def _text(max_length: int, **kwargs: Any) -> StrictCharField:
    return StrictCharField(max_length=max_length, required=False, allow_blank=True, default="", **kwargs)


class PublicDecisionContextSerializer(StrictSerializer):
    """What the snippet knows of the page; the user agent and the country are the request's own."""

    language = _text(35, help_text="`navigator.language` (de-DE); the primary subtag is used.")
    timezone = _text(64, help_text="IANA time zone (Europe/Berlin); UTC when absent or unknown.")
    url = _text(2000, help_text="The page's URL; only its utm_* parameters are read.")
    referrer = _text(2000, help_text="`document.referrer`; only its host is read.")


class PartnerDecisionContextSerializer(PublicDecisionContextSerializer):
    """What the partner's server knows of its visitor's request."""

    country = _text(2, help_text="ISO 3166-1 alpha-2 (DE).")
    user_agent = _text(500, help_text="The visitor's User-Agent header.")


class PublicDecisionRequestSerializer(StrictSerializer):
    campaign = StrictCharField(max_length=32, help_text="The campaign's public id.")
    visitor_id = StrictRegexField(
        VISITOR_ID.pattern, max_length=64, min_length=16,
        help_text="The page's anonymous visitor id (a first-party cookie): 16 to 64 of A-Z, a-z, 0-9, _ and -.",
        error_messages={"invalid": "16 to 64 of A-Z, a-z, 0-9, _ and -."},
    )
    context = PublicDecisionContextSerializer(required=False)


class PartnerDecisionRequestSerializer(PublicDecisionRequestSerializer):
    subject = StrictUUIDField(
        required=False, allow_null=True, help_text="The consenting subject's public id, when you know it."
    )
    context = PartnerDecisionContextSerializer(required=False)


# --- The answer -------------------------------------------------------------------------------------------------


class VariantContentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["headline", "body", "image_url", "cta_text", "cta_url", "payload", "html"]
        read_only_fields = fields


class DecidedVariantSerializer(serializers.ModelSerializer):
    content = VariantContentSerializer(source="*", read_only=True)

    class Meta:
        model = Variant
        fields = ["key", "name", "content"]
        read_only_fields = fields


class DecisionReasonSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Decision.Reason.choices, read_only=True)
    rule = serializers.IntegerField(allow_null=True, read_only=True, help_text="The rule that fired, or null.")
    experiment = serializers.CharField(
        allow_null=True, read_only=True,
        help_text="The key of the experiment when it decided (kind experiment or holdout), else null.",
    )
    experiment_arm = serializers.CharField(
        allow_null=True, read_only=True,
        help_text="The variant key of the experiment's arm when the experiment chose (kind experiment); null "
        "otherwise, also in the holdout (kind holdout).",
    )


class SkippedRuleSerializer(serializers.Serializer):
    rule = serializers.IntegerField(read_only=True)
    reason = serializers.CharField(
        read_only=True,
        help_text="emotion_recognition_forbidden, no_subject, no_face_analysis_consent, no_personalization_consent, "
        "no_fresh_features or invalid_rule.",
    )


class DecisionSerializer(serializers.Serializer):
    """A decision as the page or the partner's server gets it."""

    decision_id = serializers.UUIDField(read_only=True)
    campaign = serializers.CharField(read_only=True)
    variant = DecidedVariantSerializer(read_only=True)
    reason = DecisionReasonSerializer(read_only=True)
    skipped = SkippedRuleSerializer(many=True, read_only=True)
    cache_ttl_seconds = serializers.IntegerField(read_only=True)


def decision_body(decision: Decision) -> dict[str, Any]:
    """The answer's body for a decision just made (its campaign and variant are loaded with it), in the shape
    DecisionSerializer documents. Built as a plain dict: on the hot path of every page view, where DRF's field
    machinery cost more than the rules (tests/campaigns/test_decisions_api.py holds it to the schema)."""
    variant = decision.variant
    return {
        "decision_id": str(decision.public_id),
        "campaign": decision.campaign.public_id,
        "variant": {
            "key": variant.key,
            "name": variant.name,
            "content": {field: getattr(variant, field) for field in VariantContentSerializer.Meta.fields},
        },
        "reason": {
            "kind": decision.reason,
            "rule": decision.rule_id,
            "experiment": experiment.key if (experiment := getattr(decision, "experiment", None)) else None,
            "experiment_arm": decision.experiment_arm.variant.key if decision.experiment_arm_id else None,
        },
        "skipped": [
            {"rule": step["rule"], "reason": step["reason"]}
            for step in decision.trace
            if step.get("status") == "skipped"
        ],
        "cache_ttl_seconds": decision.campaign.decision_ttl_seconds,
    }


# --- Events -----------------------------------------------------------------------------------------------------


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 9999999999.9999})
class EventValueField(serializers.Field):
    """A JSON number (never a string or a boolean), finite, at least 0 and below VALUE_LIMIT."""

    default_error_messages = {"invalid": "A number.", "range": f"At least 0 and below {VALUE_LIMIT}."}

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        amount = Decimal(str(data))
        if not Decimal(0) <= amount < VALUE_LIMIT or amount.quantize(VALUE_STEP) >= VALUE_LIMIT:
            self.fail("range")
        return amount

    def to_representation(self, value: Any) -> float | None:
        return None if value is None else float(value)


class EventRequestSerializer(StrictSerializer):
    decision = StrictUUIDField(help_text="The decision's id (`decision_id`).")
    client_event_id = StrictRegexField(
        CLIENT_EVENT_ID.pattern, max_length=64,
        help_text="Your id of this event: a second post with it records nothing and answers the first (200).",
        error_messages={"invalid": "1 to 64 printable characters without spaces."},
    )
    kind = serializers.ChoiceField(choices=Event.Kind.choices)
    name = StrictRegexField(
        EVENT_NAME.pattern, max_length=64, required=False, allow_blank=True, default="",
        help_text="purchase, signup, video_50 ...; required for custom events.",
        error_messages={"invalid": "At most 64 of A-Z, a-z, 0-9, _ . : and -."},
    )
    value = EventValueField(required=False, allow_null=True, default=None,
                            help_text="Conversion and custom events only; with a currency.")
    currency = StrictRegexField(
        CURRENCY.pattern, max_length=3, required=False, allow_blank=True, default="",
        help_text="ISO 4217 (EUR), with a value.", error_messages={"invalid": "Three capital letters (EUR)."},
    )
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PublicEventRequestSerializer(EventRequestSerializer):
    visitor_id = StrictRegexField(
        VISITOR_ID.pattern, max_length=64, min_length=16, help_text="The visitor id the decision was made for.",
        error_messages={"invalid": "16 to 64 of A-Z, a-z, 0-9, _ and -."},
    )


class EventSerializer(serializers.ModelSerializer):
    """A recorded event, with the variant and rule it is attributed to."""

    decision = serializers.UUIDField(source="decision.public_id", read_only=True)
    variant = serializers.SlugRelatedField(slug_field="key", read_only=True)
    rule = serializers.IntegerField(source="rule_id", allow_null=True, read_only=True)
    value = EventValueField(read_only=True, allow_null=True)

    class Meta:
        model = Event
        fields = ["decision", "client_event_id", "kind", "name", "value", "currency", "variant", "rule",
                  "occurred_at", "received_at"]
        read_only_fields = fields
