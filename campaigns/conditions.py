"""Condition trees of personalization rules: the vocabulary, validation on save, and evaluation per decision.

Pure: no database, no settings. The tree's form, the fields and their operators are documented in
docs/personalization.md ("The condition tree", "Evaluation and skipping"); `condition_fields()` is the same
vocabulary for the admin's editor and the OpenAPI schema.

Evaluation looks at the whole tree before deciding anything: a rule that names a face field is skipped (never
matched, never an error) when emotion recognition is forbidden and it has an expression field, when the context
has no face signals, or when any face leaf lacks fresh features. So a `not` over missing data never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.request_context import DEVICES, UTM_KEYS, WEEKDAYS, RequestAttributes, primary_language
from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.signals import (
    AGE_BANDS,
    CONFIDENCE_FIELDS,
    EXPRESSION_FIELDS,
    FACE_FIELDS,
    GENDER_LABELS,
    FaceSignals,
)
from segments.conditions import (  # shared by both trees
    COMPARISONS,
    MAX_DEPTH,
    ConditionError,
    TreeValidator,
    checked_number,
    holds,
)

MAX_LIST = 50
MAX_STRING = 200
MAX_WINDOW_SECONDS = 604800
MIN_WINDOW_SECONDS = 10
MAX_MIN_FRAMES = 10000

DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_WINDOW_SECONDS = 900
DEFAULT_MIN_FRAMES = 3

# The purposes a rule may test and the states a grant shows: consent.models.Purpose (those the contract names)
# and consent.guards.GrantState, spelled out here to keep this module pure (a test holds them to those).
CONSENT_PURPOSES = ("face_analysis", "personalization", "partner_sharing")
GRANT_STATES = (
    "active", "withdrawn", "replaced", "expired", "notice_retired", "subject_erased", "unknown_subject", "none",
)
SKIP_REASONS = (
    "emotion_recognition_forbidden", "no_subject", "no_face_analysis_consent", "no_personalization_consent",
    "no_fresh_features",
)

GROUP_KEYS = ("all", "any", "not")
FACE_PARAMETERS = ("min_confidence", "window_seconds", "min_frames")
LEAF_KEYS = frozenset(("field", "op", "value", *FACE_PARAMETERS))

NUMBER_OPERATORS = ("gt", "gte", "lt", "lte", "between")
INTEGER_OPERATORS = ("eq", "ne", "in", "not_in", *NUMBER_OPERATORS)
LABEL_OPERATORS = ("eq", "ne", "in", "not_in")
CODE_OPERATORS = (*LABEL_OPERATORS, "exists")
STRING_OPERATORS = (*LABEL_OPERATORS, "contains", "starts_with", "ends_with", "exists")
BOOL_OPERATORS = ("eq", "ne")
SEGMENT_OPERATORS = ("in", "not_in")
LIST_OPERATORS = frozenset(("in", "not_in"))

EMOTION_FORBIDDEN = (
    "emotion recognition is forbidden in a workplace or education setting (EU AI Act Art. 5(1)(f)): "
    "{field} cannot be used in this campaign"
)


@dataclass(frozen=True)
class FieldSpec:
    """One field of the vocabulary: its kind, allowed values and operators, and what it means."""

    name: str
    kind: str  # number | label | string | bool | consent | segment
    operators: tuple[str, ...]
    description: str
    values: tuple[str, ...] | None = None  # the closed set of a label or consent field
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    face: bool = False
    emotion: bool = False
    fold_case: bool = False  # compared case-insensitively (UTM values)
    normalise: Callable[[str], str] | None = field(default=None, compare=False)  # "" when not a valid value
    hint: str = ""  # what a valid value looks like, for the error message


def _language(value: str) -> str:
    return primary_language(value) if value.strip() == value and "-" not in value and "_" not in value else ""


def _country(value: str) -> str:
    return value.upper() if len(value) == 2 and value.isascii() and value.isalpha() else ""


def _host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    return host if host and all(c.isascii() and (c.isalnum() or c in ".-_:") for c in host) else ""


def _specs() -> dict[str, FieldSpec]:
    share = {"kind": "number", "operators": NUMBER_OPERATORS, "minimum": 0.0, "maximum": 1.0, "face": True}
    specs = [
        *(FieldSpec(name=f"face.expression.{label}", emotion=True, description=(
            f"Mean probability of the {label} expression over counting frames whose top-expression confidence is "
            "at least min_confidence (appearance, not a feeling)."), **share) for label in EXPRESSION_LABELS),
        FieldSpec(name="face.top_expression", kind="label", operators=LABEL_OPERATORS, values=EXPRESSION_LABELS,
                  face=True, emotion=True, description="The most frequent top expression among counting frames "
                  "with confidence at least min_confidence."),
        FieldSpec(name="face.smile_share", emotion=True, description="Share of counting frames with a smile.",
                  **share),
        FieldSpec(name="face.attention_share", description="Share of counting frames looking at the screen.",
                  **share),
        FieldSpec(name="face.age_band", kind="label", operators=LABEL_OPERATORS, values=AGE_BANDS, face=True,
                  description="Band of the median apparent age over counting frames."),
        FieldSpec(name="face.gender", kind="label", operators=LABEL_OPERATORS, values=GENDER_LABELS, face=True,
                  description="The more frequent apparent gender among counting frames with confidence at least "
                  "min_confidence."),
        FieldSpec(name="face.quality_share", description="Share of analysed frames whose face passed the quality "
                  "gate.", **share),
        *(FieldSpec(name=f"consent.{purpose}", kind="consent", operators=LABEL_OPERATORS, values=GRANT_STATES,
                    description=f"The state of the subject's {purpose} consent (none: no grant, or anonymous).")
          for purpose in CONSENT_PURPOSES),
        FieldSpec(name="segment", kind="segment", operators=SEGMENT_OPERATORS,
                  description="Membership of segments of the campaign's organization (in: of any listed, not_in: of "
                  "none)."),
        FieldSpec(name="request.device", kind="label", operators=LABEL_OPERATORS, values=DEVICES,
                  description="Device class from the user agent."),
        FieldSpec(name="request.language", kind="string", operators=CODE_OPERATORS, normalise=_language,
                  hint="a primary language subtag of 2 or 3 letters, such as de",
                  description="Primary language subtag, lower case (de), from the page or Accept-Language."),
        FieldSpec(name="request.country", kind="string", operators=CODE_OPERATORS, normalise=_country,
                  hint="a two-letter country code, such as DE",
                  description="ISO 3166-1 alpha-2 country code, upper case (DE), from the proxy or the partner."),
        *(FieldSpec(name=f"request.{key}", kind="string", operators=STRING_OPERATORS, fold_case=True,
                    description=f"The page URL's {key} parameter (compared ignoring case).") for key in UTM_KEYS),
        FieldSpec(name="request.referrer_host", kind="string", operators=STRING_OPERATORS, normalise=_host,
                  hint="a host name (letters, digits, dots, hyphens)",
                  description="The referrer's host name, lower case."),
        FieldSpec(name="request.local_hour", kind="number", operators=INTEGER_OPERATORS, minimum=0, maximum=23,
                  integer=True, description="Hour 0..23 in the visitor's time zone (UTC when unknown)."),
        FieldSpec(name="request.weekday", kind="label", operators=LABEL_OPERATORS, values=WEEKDAYS,
                  description="Day of the week in the visitor's time zone."),
        FieldSpec(name="request.returning", kind="bool", operators=BOOL_OPERATORS,
                  description="The visitor id has an earlier decision in the campaign."),
    ]
    return {spec.name: spec for spec in specs}


FIELDS: dict[str, FieldSpec] = _specs()


def condition_fields() -> list[dict]:
    """The vocabulary: per field its kind, values, operators, whether it is a face field and emotion recognition,
    and what it means; face fields also list their parameters with ranges and defaults (min_confidence only for
    those it applies to: expression probabilities, top expression, gender)."""
    result = []
    for spec in FIELDS.values():
        entry: dict[str, Any] = {
            "field": spec.name, "kind": spec.kind, "values": list(spec.values) if spec.values else None,
            "operators": list(spec.operators), "face": spec.face, "emotion": spec.emotion,
            "description": spec.description,
        }
        if spec.kind == "number":
            entry.update(minimum=spec.minimum, maximum=spec.maximum, integer=spec.integer)
        if spec.face:
            entry["parameters"] = {
                **({"min_confidence": {"minimum": 0.0, "maximum": 1.0, "default": DEFAULT_MIN_CONFIDENCE}}
                   if spec.name in CONFIDENCE_FIELDS else {}),
                "window_seconds": {"minimum": MIN_WINDOW_SECONDS, "maximum": MAX_WINDOW_SECONDS,
                                   "default": DEFAULT_WINDOW_SECONDS},
                "min_frames": {"minimum": 1, "maximum": MAX_MIN_FRAMES, "default": DEFAULT_MIN_FRAMES},
            }
        result.append(entry)
    return result


# --- validation -------------------------------------------------------------------------------------------------


def _key_text(key: Any) -> str:
    return str(key)[:50]


class _Validator(TreeValidator):
    def __init__(self, emotion_recognition_forbidden: bool, segment_known: Callable[[str], bool]) -> None:
        super().__init__()
        self.emotion_recognition_forbidden = emotion_recognition_forbidden
        self.segment_known = segment_known

    def leaf(self, node: Mapping, path: str) -> dict:
        for key in node:
            if key not in LEAF_KEYS:
                raise ConditionError(f"{path}.{_key_text(key)}", "unknown key in a leaf")
        if "field" not in node:
            raise ConditionError(f"{path}.field", "a leaf needs a field")
        name = node["field"]
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ConditionError(f"{path}.field", "unknown field (see the field list)")
        if spec.emotion and self.emotion_recognition_forbidden:
            raise ConditionError(f"{path}.field", EMOTION_FORBIDDEN.format(field=name))
        if "op" not in node:
            raise ConditionError(f"{path}.op", "a leaf needs an op")
        op = node["op"]
        if not isinstance(op, str) or op not in spec.operators:
            raise ConditionError(f"{path}.op", f"{name} takes the operators {', '.join(spec.operators)}")
        if "value" not in node:
            raise ConditionError(f"{path}.value", "a leaf needs a value")
        result = {"field": name, "op": op, "value": self.value(spec, op, node["value"], f"{path}.value")}
        if spec.face:
            result["min_confidence"] = float(checked_number(
                node.get("min_confidence", DEFAULT_MIN_CONFIDENCE), f"{path}.min_confidence", minimum=0.0,
                maximum=1.0, integer=False, what="min_confidence"))
            result["window_seconds"] = checked_number(
                node.get("window_seconds", DEFAULT_WINDOW_SECONDS), f"{path}.window_seconds",
                minimum=MIN_WINDOW_SECONDS, maximum=MAX_WINDOW_SECONDS, integer=True, what="window_seconds")
            result["min_frames"] = checked_number(
                node.get("min_frames", DEFAULT_MIN_FRAMES), f"{path}.min_frames", minimum=1,
                maximum=MAX_MIN_FRAMES, integer=True, what="min_frames")
        else:
            for key in FACE_PARAMETERS:
                if key in node:
                    raise ConditionError(f"{path}.{key}", f"only face fields take {key}")
        return result

    def value(self, spec: FieldSpec, op: str, value: Any, path: str) -> Any:
        if op == "exists":
            if not isinstance(value, bool):
                raise ConditionError(path, "exists takes true or false")
            return value
        if spec.kind == "segment" and isinstance(value, str):
            value = [value]  # one key is a list of one
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
        if spec.kind == "number":
            return checked_number(value, path, minimum=spec.minimum, maximum=spec.maximum, integer=spec.integer,
                                   what="the value")
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
            raise ConditionError(path, f"the value must be 1 to {MAX_STRING} characters (use exists for none)")
        if spec.kind == "segment":
            if not self.segment_known(value):
                raise ConditionError(path, "unknown segment of this organization")
            return value
        if spec.normalise is not None:
            normalised = spec.normalise(value)
            if not normalised:
                raise ConditionError(path, f"{spec.name} takes {spec.hint}")
            return normalised
        return value


def condition_validate(
    tree: Any,
    *,
    path: str = "condition",
    emotion_recognition_forbidden: bool = False,
    segment_known: Callable[[str], bool] = lambda key: False,
) -> Any:
    """Raise ConditionError for the first problem (path = where); return the tree normalised (defaults filled:
    min_confidence, window_seconds, min_frames on face leaves; language lower case, country upper case, referrer
    host lower case; a segment key alone becomes a list of one). The input is not changed."""
    return _Validator(emotion_recognition_forbidden, segment_known).node(tree, path, 1)


def _leaves(tree: Any, depth: int = 1) -> list[Mapping]:
    """Every leaf of a tree, in order (tolerant of malformed nodes, which are simply not leaves)."""
    if depth > MAX_DEPTH + 1 or not isinstance(tree, Mapping):
        return []
    for kind in ("all", "any"):
        if kind in tree:
            children = tree[kind]
            return [leaf for child in children for leaf in _leaves(child, depth + 1)] if isinstance(
                children, list) else []
    if "not" in tree:
        return _leaves(tree["not"], depth + 1)
    return [tree]


def uses_face(tree: Any) -> bool:
    """The tree names a face field (so it needs the face-analysis and personalization consents)."""
    return any(leaf.get("field") in FACE_FIELDS for leaf in _leaves(tree) if isinstance(leaf.get("field"), str))


def uses_segments(tree: Any) -> bool:
    """The tree names segments (so a decision asks the subject's memberships)."""
    return any(leaf.get("field") == "segment" for leaf in _leaves(tree))


def uses_emotion_recognition(tree: Any) -> bool:
    """The tree names an expression field (forbidden in workplace and education settings)."""
    return any(leaf.get("field") in EXPRESSION_FIELDS for leaf in _leaves(tree) if isinstance(leaf.get("field"), str))


# --- evaluation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationContext:
    """Everything rules read for one decision."""

    request: RequestAttributes
    consent: Mapping[str, str]  # purpose -> grant state ("active", "withdrawn", ..., "none")
    face: FaceSignals | None  # None: face fields unavailable, see face_unavailable
    face_unavailable: str | None  # "no_subject" | "no_face_analysis_consent" | "no_personalization_consent" | None
    segments: frozenset[str] = frozenset()  # segment keys the subject is in
    emotion_recognition_forbidden: bool = False


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule gave: matched, not_matched (with the deciding node) or skipped (with the reason and the face
    leaf that lacked data)."""

    status: str  # "matched" | "not_matched" | "skipped"
    node: str | None
    reason: str | None


MATCHED = RuleOutcome("matched", None, None)


class _Broken(Exception):
    """A node evaluation cannot read (a tree saved before the vocabulary changed): the rule does not match."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _face_leaves(node: Any, path: str, depth: int, found: list[tuple[str, dict]]) -> None:
    """Collect the face leaves with their paths, checking the shape evaluation relies on."""
    if depth > MAX_DEPTH or not isinstance(node, dict):  # trees are JSON: dict, not any Mapping (and faster)
        raise _Broken(path)
    if "all" in node or "any" in node:
        kind = "all" if "all" in node else "any"
        children = node[kind]
        if not isinstance(children, list) or not children:
            raise _Broken(path)
        for i, child in enumerate(children):
            _face_leaves(child, f"{path}.{kind}[{i}]", depth + 1, found)
        return
    if "not" in node:
        _face_leaves(node["not"], f"{path}.not", depth + 1, found)
        return
    name = node.get("field")
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None or node.get("op") not in spec.operators or "value" not in node:
        raise _Broken(path)
    if spec.face:
        found.append((path, node))


def _actual(spec: FieldSpec, node: Mapping, context: EvaluationContext, face_values: dict[int, Any]) -> Any:
    name = spec.name
    if spec.face:
        return face_values[id(node)]
    if name.startswith("request."):
        attribute = name[8:]
        if attribute.startswith("utm_"):
            return context.request.utm.get(attribute, "")
        return getattr(context.request, attribute)
    if name.startswith("consent."):
        return context.consent.get(name[8:], "none")
    return context.segments  # segment


def _compare(op: str, actual: Any, value: Any, spec: FieldSpec) -> bool:
    if op == "exists":
        return bool(actual) is value
    if spec.kind == "segment":
        value = [value] if isinstance(value, str) else value
        inside = any(key in actual for key in value)
        return inside if op == "in" else not inside
    if spec.fold_case:
        actual = actual.casefold()
        value = [item.casefold() for item in value] if isinstance(value, list) else value.casefold()
    if op in COMPARISONS:
        return holds(op, actual, value)
    if op == "contains":
        return value in actual
    if op == "starts_with":
        return actual.startswith(value)
    if op == "ends_with":
        return actual.endswith(value)
    raise ValueError(op)


def _evaluate(node: Mapping, path: str, context: EvaluationContext, face_values: dict[int, Any]) -> str | None:
    """None when the node matches, else the path of the node that decided it does not."""
    if "all" in node:
        for i, child in enumerate(node["all"]):
            failed = _evaluate(child, f"{path}.all[{i}]", context, face_values)
            if failed is not None:
                return failed
        return None
    if "any" in node:
        children = node["any"]
        if len(children) == 1:  # a group of one decides as its child does
            return _evaluate(children[0], f"{path}.any[0]", context, face_values)
        for i, child in enumerate(children):
            if _evaluate(child, f"{path}.any[{i}]", context, face_values) is None:
                return None
        return path
    if "not" in node:
        return path if _evaluate(node["not"], f"{path}.not", context, face_values) is None else None
    spec = FIELDS[node["field"]]
    try:
        matched = _compare(node["op"], _actual(spec, node, context, face_values), node["value"], spec)
    except (TypeError, AttributeError, ValueError, IndexError, KeyError) as exc:
        raise _Broken(path) from exc
    return None if matched else path


def rule_evaluate(tree: Any, context: EvaluationContext, *, path: str = "condition") -> RuleOutcome:
    """Whether a rule's tree matches the context (docs/personalization.md, "Evaluation and skipping"): skipped
    when it names a face field and emotion recognition is forbidden (for an expression field), the context has no
    face signals, or a face leaf finds no fresh features; else matched, or not_matched with the deciding node.
    A malformed tree (saved before the vocabulary changed) does not match, at the first node that cannot be read."""
    try:
        face_leaves: list[tuple[str, dict]] = []
        _face_leaves(tree, path, 1, face_leaves)
        face_values: dict[int, Any] = {}
        if face_leaves:
            if context.emotion_recognition_forbidden:
                for leaf_path, leaf in face_leaves:
                    if leaf["field"] in EXPRESSION_FIELDS:
                        return RuleOutcome("skipped", leaf_path, "emotion_recognition_forbidden")
            face = context.face
            if face is None:
                return RuleOutcome("skipped", face_leaves[0][0], context.face_unavailable or "no_fresh_features")
            for leaf_path, leaf in face_leaves:
                try:
                    value = face.read(
                        leaf["field"],
                        window_seconds=leaf.get("window_seconds", DEFAULT_WINDOW_SECONDS),
                        min_confidence=leaf.get("min_confidence", DEFAULT_MIN_CONFIDENCE),
                        min_frames=leaf.get("min_frames", DEFAULT_MIN_FRAMES),
                    )
                except TypeError as exc:
                    raise _Broken(leaf_path) from exc
                if value is None:
                    return RuleOutcome("skipped", leaf_path, "no_fresh_features")
                face_values[id(leaf)] = value
        failed = _evaluate(tree, path, context, face_values)
    except _Broken as broken:
        return RuleOutcome("not_matched", broken.path, None)
    return MATCHED if failed is None else RuleOutcome("not_matched", failed, None)
