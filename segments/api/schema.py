"""A segment's definition in the OpenAPI schema: a recursive tree (`SegmentConditionNode`) whose leaves take the
fields, operators and parameters of segments.conditions (the rules' tree has its own, in campaigns)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension

from config.api.condition_tree import tree_components, tree_field_schema
from segments import conditions


def definition_components() -> dict[str, dict[str, Any]]:
    """The schema components of a segment's definition, by name (`SegmentConditionNode` ...)."""
    window_low, window_high = conditions.MIN_WINDOW_SECONDS, conditions.MAX_WINDOW_SECONDS
    return tree_components(
        "SegmentCondition", conditions.condition_fields(), max_children=conditions.MAX_CHILDREN,
        max_depth=conditions.MAX_DEPTH, max_nodes=conditions.MAX_NODES, max_list=conditions.MAX_LIST,
        max_string=conditions.MAX_STRING, path_example="definition.all[1].window_seconds",
        parameters={
            "window_seconds": {"type": "integer", "minimum": window_low, "maximum": window_high,
                               "description": "Face and behaviour fields: only what happened this recently "
                               f"(default {conditions.DEFAULT_WINDOW_SECONDS})."},
            "min_frames": {"type": "integer", "minimum": 1, "maximum": conditions.MAX_MIN_FRAMES,
                           "description": "Face shares, age band, gender: fewer qualifying frames in the window "
                           f"means no estimate, and the leaf is false (default {conditions.DEFAULT_MIN_FRAMES})."},
            "min_confidence": {"type": "number", "minimum": 0, "maximum": 1,
                               "description": "Expression shares and gender: least confidence of a frame's "
                               f"estimate to count it (default {conditions.DEFAULT_MIN_CONFIDENCE})."},
            "campaign": {"type": "integer", "minimum": 1,
                         "description": "Face and behaviour fields: only this campaign of the organization."},
            "name": {"type": "string", "minLength": 1, "maxLength": 64,
                     "description": "Behaviour fields: only events of this name (required for custom events)."},
        },
    )


class DefinitionFieldExtension(OpenApiSerializerFieldExtension):
    """A DefinitionField is a `$ref` to SegmentConditionNode; the components are registered on first use."""

    target_class = "segments.api.serializers.DefinitionField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return tree_field_schema(auto_schema, definition_components(), "SegmentCondition",
                                 str(self.target.help_text or ""), nullable=self.target.allow_null)
