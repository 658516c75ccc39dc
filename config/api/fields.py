"""Serializer fields that take only the JSON type they document.

DRF's CharField turns a number into its string and its UUIDField takes an integer as a UUID; a client that
sends `5` where a string is documented has a bug that a 400 shows at once. Both refuse NUL characters
(DRF's default validator), which PostgreSQL cannot store or compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A request body that refuses keys it does not declare (a typo must not pass as an absent optional field)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key[:64]: ["Unknown field."] for key in unknown[:10]})
        return super().to_internal_value(data)


class StrictSerializerExtension(OpenApiSerializerExtension):
    """A strict request body says so in the schema: `additionalProperties: false`."""

    target_class = "config.api.fields.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}


class StrictCharField(serializers.CharField):
    """A text field that takes text only: DRF's CharField turns a JSON number into a string, which the schema
    (`type: string`) does not allow and a caller rarely means."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a string; an integer is not taken as one."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid", value=str(data)[:64])
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    """A RegexField that takes text only (DRF's turns a number into its string first)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
