"""A condition tree in the OpenAPI schema, for rules (campaigns) and segments alike: a recursive node that is one
of an all, an any, a not or a leaf, the leaf's fields and operators taken from the app's vocabulary and its
parameters stated with their ranges. Each app registers its own components under its own prefix."""

from __future__ import annotations

from typing import Any

from drf_spectacular.plumbing import ResolvedComponent


def tree_components(
    prefix: str, vocabulary: list[dict[str, Any]], *, parameters: dict[str, dict[str, Any]], max_children: int,
    max_depth: int, max_nodes: int, max_list: int, max_string: int, path_example: str,
) -> dict[str, dict[str, Any]]:
    """The components `<prefix>Node`, `<prefix>All`, `<prefix>Any`, `<prefix>Not` and `<prefix>Leaf`."""
    node_ref = {"$ref": f"#/components/schemas/{prefix}Node"}

    def group(key: str, meaning: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": f"{meaning} (1..{max_children} children).",
            "properties": {key: {"type": "array", "items": node_ref, "minItems": 1, "maxItems": max_children}},
            "required": [key],
            "additionalProperties": False,
        }

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
                      f"most {max_list} items, strings at most {max_string} characters."},
            **parameters,
        },
        "required": ["field", "op", "value"],
        "additionalProperties": False,
    }
    return {
        f"{prefix}Node": {
            "description": f"One node of a condition tree: a group (all, any, not) or a leaf. A tree is at most "
            f"{max_depth} deep (a leaf under {max_depth - 1} groups) and has at most {max_nodes} nodes. A 400 names "
            f"the offending node by its path, e.g. `{path_example}`.",
            "oneOf": [{"$ref": f"#/components/schemas/{prefix}{name}"} for name in ("All", "Any", "Not", "Leaf")],
        },
        f"{prefix}All": group("all", "Every child matches"),
        f"{prefix}Any": group("any", "At least one child matches"),
        f"{prefix}Not": {
            "type": "object",
            "description": "The child does not match.",
            "properties": {"not": node_ref},
            "required": ["not"],
            "additionalProperties": False,
        },
        f"{prefix}Leaf": leaf,
    }


def tree_field_schema(auto_schema: Any, components: dict[str, dict[str, Any]], prefix: str,
                      help_text: str = "", nullable: bool = False) -> dict[str, Any]:
    """A field's schema: a `$ref` to `<prefix>Node` (or null, with `nullable`), registering the components on
    first use."""
    for name, schema in components.items():
        auto_schema.registry.register_on_missing(
            ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        )
    ref = {"$ref": f"#/components/schemas/{prefix}Node"}
    if not help_text and not nullable:
        return ref
    return {"allOf": [ref], **({"description": help_text} if help_text else {}),
            **({"nullable": True} if nullable else {})}
