"""The segments API in the OpenAPI schema: a strict request body says `additionalProperties: false`, as it
refuses members it does not know with a 400 (segments may not use campaigns' own extension: apps import one way)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension


class StrictSegmentSerializerExtension(OpenApiSerializerExtension):
    target_class = "segments.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}
