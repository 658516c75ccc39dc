"""A segment's definition: the condition tree's vocabulary and its validation. Pure: no database, no settings.

The tree has the form of a personalization rule's (`campaigns.conditions`): groups `{"all": [...]}`,
`{"any": [...]}`, `{"not": {...}}` and leaves `{"field", "op", "value", ...}`, with the same limits, operators
and node paths in errors ("definition.all[1].window_seconds"). Where the two vocabularies overlap the names are
the same (`face.attention_share`, `face.smile_share`, `face.age_band`, `face.gender`, `consent.<purpose>`,
`segment`); a segment's windows are longer (up to a year) and a face leaf may name one campaign. What each field
means, in SQL and in words, is in docs/segments.md; `segments.compiler` turns a validated tree into one query.

| field | value | parameters |
| --- | --- | --- |
| face.attention_share, face.smile_share | share 0..1 | window_seconds, min_frames, campaign |
| face.expression_share.<label> | share 0..1 of counting frames topped by <label> at >= min_confidence | + min_conf. |
| face.age_band | band of the median apparent age | window_seconds, min_frames, campaign |
| face.gender | the more frequent label at >= min_confidence (a tie: the newest frame's) | + min_confidence |
| face.sessions | capture sessions started in the window | window_seconds, campaign |
| behaviour.impressions, clicks, conversions, custom_events | events in the window (0 without) | window, campaign |
| behaviour.conversion_value | sum of the conversions' values (0 without any) | window_seconds, campaign, name |
| consent.<purpose> | the grant's state, as the guard shows it | |
| subject.days_since_first_seen | whole days | |
| subject.partner_linked | the partner supplied a user id | |
| segment | membership of other segments (cycles refused) | |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.signals import AGE_BANDS, GENDER_LABELS

MAX_DEPTH = 6
MAX_NODES = 50
MAX_CHILDREN = 20
MAX_LIST = 50
MAX_STRING = 200
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 365 * 86400
MAX_MIN_FRAMES = 100000
MAX_COUNT = 1_000_000
MAX_VALUE = 1e12
MAX_DAYS = 36500

DEFAULT_WINDOW_SECONDS = 7 * 86400
DEFAULT_MIN_FRAMES = 3
DEFAULT_MIN_CONFIDENCE = 0.5

CONSENT_PURPOSES = ("face_analysis", "personalization", "partner_sharing")
GRANT_STATES = (
    "active", "withdrawn", "replaced", "expired", "notice_retired", "subject_erased", "unknown_subject", "none",
)
# A face condition is evaluated only for subjects live on both: analysing the face, and using it to single out.
FACE_PURPOSES = ("face_analysis", "personalization")
EVENT_KINDS = {"behaviour.impressions": "impression", "behaviour.clicks": "click",
               "behaviour.conversions": "conversion", "behaviour.custom_events": "custom",
               "behaviour.conversion_value": "conversion"}

GROUP_KEYS = ("all", "any", "not")
LEAF_KEYS = frozenset(("field", "op", "value", "window_seconds", "min_frames", "min_confidence", "campaign", "name"))

NUMBER_OPERATORS = ("gt", "gte", "lt", "lte", "between")
INTEGER_OPERATORS = ("eq", "ne", "in", "not_in", *NUMBER_OPERATORS)
LABEL_OPERATORS = ("eq", "ne", "in", "not_in")
BOOL_OPERATORS = ("eq", "ne")
SEGMENT_OPERATORS = ("in", "not_in")
LIST_OPERATORS = frozenset(("in", "not_in"))
EXPRESSION_SHARE_PREFIX = "face.expression_share."


class ConditionError(ValueError):
    """A tree that cannot be saved (a rule's or a segment's); `path` names the offending node, e.g.
    "condition.all[1].value" or "definition.all[1].window_seconds"."""

    path: str
    message: str

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class FieldSpec:
    """One field: its kind, values and operators, which parameters it takes, and what it means."""

    name: str
    kind: str  # share | count | amount | label | bool | consent | segment
    operators: tuple[str, ...]
    description: str
    values: tuple[str, ...] | None = None
    parameters: tuple[str, ...] = ()
    face: bool = False
    emotion: bool = False
    behaviour: bool = False
    name_required: bool = False

    @property
    def minimum(self) -> float:
        return 0.0

    @property
    def maximum(self) -> float:
        return {"share": 1.0, "count": MAX_COUNT, "amount": MAX_VALUE, "days": MAX_DAYS}.get(self.kind, 0.0)

    @property
    def integer(self) -> bool:
        return self.kind in ("count", "days")


def _specs() -> dict[str, FieldSpec]:
    share = {"kind": "share", "operators": NUMBER_OPERATORS, "face": True}
    window = ("window_seconds", "min_frames", "campaign")
    events = ("window_seconds", "campaign", "name")
    specs = [
        FieldSpec(name="face.attention_share", parameters=window, description="Share of counting frames looking at "
                  "the screen.", **share),
        FieldSpec(name="face.smile_share", parameters=window, emotion=True, description="Share of counting frames "
                  "with a smile.", **share),
        *(FieldSpec(name=f"{EXPRESSION_SHARE_PREFIX}{label}", parameters=(*window, "min_confidence"), emotion=True,
                    description=f"Share of counting frames with a top expression whose top is {label} with "
                    "confidence at least min_confidence (appearance, not a feeling).", **share)
          for label in EXPRESSION_LABELS),
        FieldSpec(name="face.age_band", kind="label", operators=LABEL_OPERATORS, values=AGE_BANDS, face=True,
                  parameters=window, description="Band of the median apparent age over counting frames."),
        FieldSpec(name="face.gender", kind="label", operators=LABEL_OPERATORS, values=GENDER_LABELS, face=True,
                  parameters=(*window, "min_confidence"), description="The more frequent apparent gender among "
                  "counting frames with confidence at least min_confidence (a tie: the newest frame's)."),
        FieldSpec(name="face.sessions", kind="count", operators=INTEGER_OPERATORS, face=True,
                  parameters=("window_seconds", "campaign"), description="Capture sessions started in the window."),
        *(FieldSpec(name=name, kind="count", operators=INTEGER_OPERATORS, behaviour=True, parameters=events,
                    name_required=name == "behaviour.custom_events",
                    description=f"{kind.capitalize()} events in the window (0 without any).")
          for name, kind in EVENT_KINDS.items() if name != "behaviour.conversion_value"),
        FieldSpec(name="behaviour.conversion_value", kind="amount", operators=NUMBER_OPERATORS, behaviour=True,
                  parameters=events, description="Sum of the conversions' values in the window (0 without any)."),
        *(FieldSpec(name=f"consent.{purpose}", kind="consent", operators=LABEL_OPERATORS, values=GRANT_STATES,
                    description=f"The state of the subject's {purpose} consent (none: no grant).")
          for purpose in CONSENT_PURPOSES),
        FieldSpec(name="subject.days_since_first_seen", kind="days", operators=INTEGER_OPERATORS,
                  description="Whole days since the subject was first seen."),
        FieldSpec(name="subject.partner_linked", kind="bool", operators=BOOL_OPERATORS,
                  description="The partner supplied its own user id for the subject (kept only as a keyed hash)."),
        FieldSpec(name="segment", kind="segment", operators=SEGMENT_OPERATORS,
                  description="Membership of other segments of the organization (in: any listed, not_in: none)."),
    ]
    return {spec.name: spec for spec in specs}


FIELDS: dict[str, FieldSpec] = _specs()

_PARAMETER_RANGES = {
    "window_seconds": (MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS, DEFAULT_WINDOW_SECONDS),
    "min_frames": (1, MAX_MIN_FRAMES, DEFAULT_MIN_FRAMES),
    "min_confidence": (0.0, 1.0, DEFAULT_MIN_CONFIDENCE),
}


def condition_fields() -> list[dict]:
    """The vocabulary for the admin's editor and the API: per field its kind, values, operators, parameters with
    ranges and defaults (campaign and name are optional and have none), and what it means."""
    result = []
    for spec in FIELDS.values():
        entry: dict[str, Any] = {
            "field": spec.name, "kind": "number" if spec.kind in ("share", "count", "amount", "days") else spec.kind,
            "values": list(spec.values) if spec.values else None, "operators": list(spec.operators),
            "face": spec.face, "emotion": spec.emotion, "description": spec.description,
        }
        if entry["kind"] == "number":
            entry.update(minimum=spec.minimum, maximum=spec.maximum, integer=spec.integer)
        if spec.parameters:
            entry["parameters"] = {
                name: ({"minimum": _PARAMETER_RANGES[name][0], "maximum": _PARAMETER_RANGES[name][1],
                        "default": _PARAMETER_RANGES[name][2]} if name in _PARAMETER_RANGES else {"optional": True})
                for name in spec.parameters
            }
        result.append(entry)
    return result


# --- validation -------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def checked_number(value: Any, path: str, *, minimum: float, maximum: float, integer: bool, what: str) -> Any:
    """A number in [minimum, maximum] (an integer where asked; 3.0 becomes 3), or ConditionError."""
    if not _is_number(value):
        raise ConditionError(path, f"{what} must be a number")
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise ConditionError(path, f"{what} must be a whole number")
        value = int(value)
    if not minimum <= value <= maximum:
        low, high = (int(minimum), int(maximum)) if integer else (minimum, maximum)
        raise ConditionError(path, f"{what} must be between {low} and {high}")
    return value


def group_kind(node: Mapping, path: str) -> str | None:
    """"all", "any" or "not" for a well-formed group node, None for a leaf; ConditionError for a mixed node."""
    groups = [key for key in GROUP_KEYS if key in node]
    if not groups:
        return None
    if len(groups) > 1:
        raise ConditionError(path, "a group node has exactly one of all, any, not")
    for key in node:
        if key not in GROUP_KEYS:
            raise ConditionError(f"{path}.{str(key)[:50]}", "unknown key in a group node")
    return groups[0]


class TreeValidator:
    """The walk over a condition tree's groups that rules and segments share: the limits of depth, nodes and
    children, and each node's path. A subclass checks its own leaves (`leaf`)."""

    def __init__(self) -> None:
        self.nodes = 0

    def node(self, node: Any, path: str, depth: int) -> dict:
        if depth > MAX_DEPTH:
            raise ConditionError(path, f"the tree is deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConditionError(path, f"the tree has more than {MAX_NODES} nodes")
        if not isinstance(node, Mapping):
            raise ConditionError(path, "a node is an object: {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} "
                                       "or a leaf {\"field\", \"op\", \"value\"}")
        kind = group_kind(node, path)
        if kind is None:
            return self.leaf(node, path)
        if kind == "not":
            return {"not": self.node(node["not"], f"{path}.not", depth + 1)}
        children = node[kind]
        if not isinstance(children, list) or not 1 <= len(children) <= MAX_CHILDREN:
            raise ConditionError(f"{path}.{kind}", f"{kind} takes a list of 1 to {MAX_CHILDREN} nodes")
        return {kind: [self.node(child, f"{path}.{kind}[{i}]", depth + 1) for i, child in enumerate(children)]}

    def leaf(self, node: Mapping, path: str) -> dict:
        raise NotImplementedError


class _Validator(TreeValidator):
    def __init__(self, segment_known: Callable[[str], bool], campaign_known: Callable[[int], bool]) -> None:
        super().__init__()
        self.segment_known = segment_known
        self.campaign_known = campaign_known

    def leaf(self, node: Mapping, path: str) -> dict:
        for key in node:
            if key not in LEAF_KEYS:
                raise ConditionError(f"{path}.{str(key)[:50]}", "unknown key in a leaf")
        if "field" not in node:
            raise ConditionError(f"{path}.field", "a leaf needs a field")
        name = node["field"]
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ConditionError(f"{path}.field", "unknown field (see the field list)")
        if "op" not in node:
            raise ConditionError(f"{path}.op", "a leaf needs an op")
        op = node["op"]
        if not isinstance(op, str) or op not in spec.operators:
            raise ConditionError(f"{path}.op", f"{name} takes the operators {', '.join(spec.operators)}")
        if "value" not in node:
            raise ConditionError(f"{path}.value", "a leaf needs a value")
        value = self.value(spec, op, node["value"], f"{path}.value")
        result: dict[str, Any] = {"field": name, "op": op, "value": value}
        for key in ("window_seconds", "min_frames", "min_confidence", "campaign", "name"):
            if key not in spec.parameters:
                if key in node:
                    raise ConditionError(f"{path}.{key}", f"{name} takes no {key}")
                continue
            if key in _PARAMETER_RANGES:
                low, high, default = _PARAMETER_RANGES[key]
                number = checked_number(node.get(key, default), f"{path}.{key}", minimum=low, maximum=high,
                                        integer=key != "min_confidence", what=key)
                result[key] = float(number) if key == "min_confidence" else number
            elif key == "campaign" and node.get(key) is not None:
                result[key] = self.campaign(node[key], f"{path}.campaign")
            elif key == "name" and node.get(key) not in (None, ""):
                result[key] = self.event_name(node[key], f"{path}.name")
        if spec.name_required and "name" not in result:
            raise ConditionError(f"{path}.name", f"{name} needs the event's name")
        return result

    def campaign(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConditionError(path, "campaign is the id of one of the organization's campaigns")
        if not self.campaign_known(value):
            raise ConditionError(path, "unknown campaign of this organization")
        return value

    @staticmethod
    def event_name(value: Any, path: str) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 64 or value.strip() != value:
            raise ConditionError(path, "name is the event's name, 1 to 64 characters (purchase, signup ...)")
        return value

    def value(self, spec: FieldSpec, op: str, value: Any, path: str) -> Any:
        if spec.kind == "segment" and isinstance(value, str):
            value = [value]
        if op in LIST_OPERATORS:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
                raise ConditionError(path, f"{op} takes a list of 1 to {MAX_LIST} values")
            return [self.scalar(spec, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ConditionError(path, "between takes [low, high]")
            low, high = (self.scalar(spec, item, f"{path}[{i}]") for i, item in enumerate(value))
            if low > high:
                raise ConditionError(path, "between takes [low, high] with low <= high")
            return [low, high]
        return self.scalar(spec, value, path)

    def scalar(self, spec: FieldSpec, value: Any, path: str) -> Any:
        if spec.kind in ("share", "count", "amount", "days"):
            number = checked_number(value, path, minimum=spec.minimum, maximum=spec.maximum, integer=spec.integer,
                                    what="the value")
            return number if spec.integer else float(number)
        if spec.kind == "bool":
            if not isinstance(value, bool):
                raise ConditionError(path, "the value must be true or false")
            return value
        if not isinstance(value, str):
            raise ConditionError(path, "the value must be a string")
        if spec.values is not None:
            if value not in spec.values:
                raise ConditionError(path, f"the value must be one of {', '.join(spec.values)}")
            return value
        if not 1 <= len(value) <= MAX_STRING:
            raise ConditionError(path, f"the value must be 1 to {MAX_STRING} characters")
        if not self.segment_known(value):
            raise ConditionError(path, "unknown segment of this organization")
        return value


def validate_definition(
    tree: Any, *, segment_known: Callable[[str], bool] = lambda key: False,
    campaign_known: Callable[[int], bool] = lambda campaign_id: False, path: str = "definition",
) -> dict:
    """The tree in canonical form (defaults filled in, 3.0 as 3), or ConditionError naming the node. Cycles among
    segments are the caller's to refuse (it knows the other definitions: `referenced_segments`)."""
    return _Validator(segment_known, campaign_known).node(tree, path, 1)


def leaves(tree: Mapping) -> Iterator[dict]:
    """Every leaf of a validated tree, depth first."""
    for kind in ("all", "any"):
        if kind in tree:
            for child in tree[kind]:
                yield from leaves(child)
            return
    if "not" in tree:
        yield from leaves(tree["not"])
        return
    yield dict(tree)


def referenced_segments(tree: Mapping) -> frozenset[str]:
    """The keys of the other segments a validated tree names."""
    return frozenset(key for leaf in leaves(tree) if leaf["field"] == "segment" for key in leaf["value"])


def is_face_based(tree: Mapping) -> bool:
    """The tree has a face leaf: its members need live face-analysis and personalization consent."""
    return any(FIELDS[leaf["field"]].face for leaf in leaves(tree))


def uses_emotion(tree: Mapping) -> bool:
    """The tree has an expression or smile leaf (emotion recognition in the EU AI Act's sense)."""
    return any(FIELDS[leaf["field"]].emotion for leaf in leaves(tree))


COMPARISONS = frozenset(("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between"))


def holds(op: str, actual: Any, value: Any) -> bool:
    """`actual op value` for a known actual (a number, a label or a bool), `op` one of COMPARISONS: the one
    comparison of rules' evaluation, the SQL compiler's zero-count rule and the tests' reference evaluation."""
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if op == "in":
        return actual in value
    if op == "not_in":
        return actual not in value
    if op == "gt":
        return actual > value
    if op == "gte":
        return actual >= value
    if op == "lt":
        return actual < value
    if op == "lte":
        return actual <= value
    if op == "between":
        return value[0] <= actual <= value[1]
    raise ValueError(f"unknown operator {op!r}")
