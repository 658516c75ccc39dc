"""The condition tree in the OpenAPI schema: a recursive `ConditionNode` (one of `ConditionAll`, `ConditionAny`,
`ConditionNot` or a `ConditionLeaf`), its fields and operators taken from campaigns.conditions, its limits stated
(see docs/personalization.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from campaigns import conditions

NODE_REF = {"$ref": "#/components/schemas/ConditionNode"}


def _group(key: str, meaning: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{meaning} ({1}..{conditions.MAX_CHILDREN} children).",
        "properties": {key: {"type": "array", "items": NODE_REF, "minItems": 1, "maxItems": conditions.MAX_CHILDREN}},
        "required": [key],
        "additionalProperties": False,
    }


def condition_components() -> dict[str, dict[str, Any]]:
    """The schema components of the condition tree, by name."""
    vocabulary = conditions.condition_fields()
    operators = sorted({op for spec in vocabulary for op in spec["operators"]})
    field_lines = "; ".join(
        f"`{spec['field']}` ({spec['kind']}; {', '.join(spec['operators'])}"
        + ("; face signal" if spec["face"] else "")
        + ("; emotion recognition, refused in workplace and education settings" if spec["emotion"] else "")
        + ")"
        for spec in vocabulary
    )
    leaf = {
        "type": "object",
        "description": "A comparison of one field. Each field allows the operators that make sense for it: "
        + field_lines + ". Unknown keys are errors.",
        "properties": {
            "field": {"type": "string", "enum": [spec["field"] for spec in vocabulary]},
            "op": {"type": "string", "enum": operators,
                   "description": "in / not_in take a list, between takes [low, high] (inclusive), exists takes "
                   "true or false; the rest one value."},
            "value": {"description": f"A number, string, boolean or list fitting the field and operator; lists at "
                      f"most {conditions.MAX_LIST} items, strings at most {conditions.MAX_STRING} characters."},
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
        "required": ["field", "op", "value"],
        "additionalProperties": False,
    }
    return {
        "ConditionNode": {
            "description": f"One node of a condition tree: a group (all, any, not) or a leaf. A tree is at most "
            f"{conditions.MAX_DEPTH} deep (a leaf under {conditions.MAX_DEPTH - 1} groups) and has at most "
            f"{conditions.MAX_NODES} nodes. A 400 names the offending node by its path, e.g. "
            "`rules[2].condition.all[1].value`.",
            "oneOf": [{"$ref": f"#/components/schemas/{name}"}
                      for name in ("ConditionAll", "ConditionAny", "ConditionNot", "ConditionLeaf")],
        },
        "ConditionAll": _group("all", "Every child matches"),
        "ConditionAny": _group("any", "At least one child matches"),
        "ConditionNot": {
            "type": "object",
            "description": "The child does not match.",
            "properties": {"not": NODE_REF},
            "required": ["not"],
            "additionalProperties": False,
        },
        "ConditionLeaf": leaf,
    }


class ConditionFieldExtension(OpenApiSerializerFieldExtension):
    """A ConditionField is a `$ref` to ConditionNode; the components are registered on first use."""

    target_class = "campaigns.api.serializers.ConditionField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        for name, schema in condition_components().items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
            )
        field = self.target
        schema = dict(NODE_REF)
        if field.help_text:
            return {"allOf": [schema], "description": str(field.help_text)}
        return schema


class StrictSerializerExtension(OpenApiSerializerExtension):
    """A strict request body (decision_serializers.StrictSerializer refuses members it does not know with a 400)
    says so in the schema: `additionalProperties: false`."""

    target_class = "campaigns.api.decision_serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}
