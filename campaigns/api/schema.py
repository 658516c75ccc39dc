"""The condition tree in the OpenAPI schema: a recursive `ConditionNode` (one of `ConditionAll`, `ConditionAny`,
`ConditionNot` or a `ConditionLeaf`), its fields and operators taken from campaigns.conditions, its limits stated
(see docs/personalization.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension

from campaigns import conditions
from config.api.condition_tree import tree_components, tree_field_schema
from segments import conditions as tree_limits  # one walk, one set of limits for rules and segments


def condition_components() -> dict[str, dict[str, Any]]:
    """The schema components of the condition tree, by name."""
    return tree_components(
        "Condition", conditions.condition_fields(), max_children=tree_limits.MAX_CHILDREN,
        max_depth=tree_limits.MAX_DEPTH, max_nodes=tree_limits.MAX_NODES, max_list=conditions.MAX_LIST,
        max_string=conditions.MAX_STRING, path_example="rules[2].condition.all[1].value",
        parameters={
            "min_confidence": {"type": "number", "minimum": 0, "maximum": 1,
                               "description": "Face fields: least confidence of a frame's expression or gender "
                               "estimate to count it (default 0.5)."},
            "window_seconds": {"type": "integer", "minimum": conditions.MIN_WINDOW_SECONDS,
                               "maximum": conditions.MAX_WINDOW_SECONDS,
                               "description": "Face fields: only frames analysed this recently (default 900)."},
            "min_frames": {"type": "integer", "minimum": 1, "maximum": 10000,
                           "description": "Face fields: fewer qualifying frames in the window means no fresh "
                           "features and the rule is skipped (default 3)."},
        },
    )


class ConditionFieldExtension(OpenApiSerializerFieldExtension):
    """A ConditionField is a `$ref` to ConditionNode; the components are registered on first use."""

    target_class = "campaigns.api.serializers.ConditionField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return tree_field_schema(auto_schema, condition_components(), "Condition", str(self.target.help_text or ""))
