"""Condition trees: validation names the offending node, evaluation skips face rules lacking data, and a plain
reference evaluator agrees with rule_evaluate on random valid trees."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.conditions import (
    CONSENT_PURPOSES,
    FIELDS,
    GRANT_STATES,
    ConditionError,
    EvaluationContext,
    RuleOutcome,
    condition_fields,
    condition_validate,
    rule_evaluate,
    uses_emotion_recognition,
    uses_face,
)
from campaigns.request_context import RequestAttributes, request_attributes
from consent.guards import GrantState
from consent.models import Purpose
from faceanalysis.signals import EXPRESSION_FIELDS, FACE_FIELDS, FaceSignals, FrameSignal
from segments.conditions import MAX_NODES

NOW = 1_700_000_000.0
REQUEST = request_attributes(user_agent="Mozilla/5.0 (iPhone; Mobile)", language="de", country="DE",
                             url="https://x/?utm_source=Newsletter", referrer="https://www.google.de/",
                             timezone="Europe/Berlin", now=datetime(2024, 3, 4, 9, tzinfo=UTC), returning=True)
SMILE = {"field": "face.smile_share", "op": "gte", "value": 0.5}
MOBILE = {"field": "request.device", "op": "eq", "value": "mobile"}


def smiling_frames(count: int = 5, smile: float = 0.9) -> FaceSignals:
    return FaceSignals([FrameSignal(at=NOW - i, counting=True, looking=True, smile=smile, expression="happy",
                                    expression_confidence=0.9, expression_probabilities={"happy": 0.9, "neutral": 0.1},
                                    age_years=30.0, gender="female", gender_confidence=0.9) for i in range(count)],
                       now=NOW)


def context(face: FaceSignals | None = None, *, unavailable: str | None = None, forbidden: bool = False,
            consent: dict | None = None, segments: frozenset = frozenset(),
            request: RequestAttributes = REQUEST) -> EvaluationContext:
    return EvaluationContext(request=request, consent=consent or {"personalization": "active"}, face=face,
                             face_unavailable=unavailable, segments=segments, emotion_recognition_forbidden=forbidden)


def error_path(tree: Any, **kwargs: Any) -> str:
    with pytest.raises(ConditionError) as caught:
        condition_validate(tree, **kwargs)
    return caught.value.path


# --- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tree", "path"), [
    (None, "condition"),
    ([], "condition"),
    ("all", "condition"),
    ({}, "condition.field"),
    ({"all": []}, "condition.all"),
    ({"all": {}}, "condition.all"),
    ({"all": [MOBILE] * 21}, "condition.all"),
    ({"all": [MOBILE], "any": [MOBILE]}, "condition"),
    ({"all": [MOBILE], "extra": 1}, "condition.extra"),
    ({"all": [MOBILE, 3]}, "condition.all[1]"),
    ({"not": {"not": "x"}}, "condition.not.not"),
    ({"field": "request.device", "op": "eq", "value": "mobile", "colour": "red"}, "condition.colour"),
    ({"op": "eq", "value": 1}, "condition.field"),
    ({"field": "face.shoe_size", "op": "eq", "value": 1}, "condition.field"),
    ({"field": ["request.device"], "op": "eq", "value": 1}, "condition.field"),
    ({"field": "request.device", "value": "mobile"}, "condition.op"),
    ({"all": [MOBILE, {"field": "request.device", "op": "gt", "value": "mobile"}]}, "condition.all[1].op"),
    ({"any": [{"not": {"field": "face.smile_share", "op": "eq", "value": 0.5}}]}, "condition.any[0].not.op"),
    ({"field": "request.device", "op": "eq"}, "condition.value"),
    ({"all": [MOBILE, {"field": "request.device", "op": "eq", "value": "fridge"}]}, "condition.all[1].value"),
    ({"field": "face.smile_share", "op": "gte", "value": 1.5}, "condition.value"),
    ({"field": "face.smile_share", "op": "gte", "value": -0.1}, "condition.value"),
    ({"field": "face.smile_share", "op": "gte", "value": True}, "condition.value"),
    ({"field": "face.smile_share", "op": "gte", "value": "0.5"}, "condition.value"),
    ({"field": "face.smile_share", "op": "gte", "value": math.nan}, "condition.value"),
    ({"field": "face.smile_share", "op": "gte", "value": math.inf}, "condition.value"),
    ({"field": "face.expression.happy", "op": "between", "value": [0.8, 0.2]}, "condition.value"),
    ({"field": "face.expression.happy", "op": "between", "value": [0.2]}, "condition.value"),
    ({"field": "face.expression.happy", "op": "between", "value": [0.2, "x"]}, "condition.value[1]"),
    ({"field": "request.local_hour", "op": "eq", "value": 24}, "condition.value"),
    ({"field": "request.local_hour", "op": "gte", "value": 7.5}, "condition.value"),
    ({"field": "request.local_hour", "op": "in", "value": [1, 2, -1]}, "condition.value[2]"),
    ({"field": "request.weekday", "op": "in", "value": []}, "condition.value"),
    ({"field": "request.weekday", "op": "in", "value": ["mon"] * 51}, "condition.value"),
    ({"field": "request.weekday", "op": "in", "value": "mon"}, "condition.value"),
    ({"field": "request.weekday", "op": "eq", "value": "Monday"}, "condition.value"),
    ({"field": "request.returning", "op": "eq", "value": 1}, "condition.value"),
    ({"field": "request.utm_source", "op": "eq", "value": ""}, "condition.value"),
    ({"field": "request.utm_source", "op": "eq", "value": "x" * 201}, "condition.value"),
    ({"field": "request.utm_source", "op": "exists", "value": "yes"}, "condition.value"),
    ({"field": "request.language", "op": "eq", "value": "de-CH"}, "condition.value"),
    ({"field": "request.country", "op": "eq", "value": "DEU"}, "condition.value"),
    ({"field": "request.referrer_host", "op": "ends_with", "value": "exa mple.com"}, "condition.value"),
    ({"field": "request.device", "op": "exists", "value": True}, "condition.op"),
    ({"field": "consent.personalization", "op": "eq", "value": "granted"}, "condition.value"),
    ({"field": "consent.marketing", "op": "eq", "value": "active"}, "condition.field"),
    ({"field": "segment", "op": "eq", "value": "vip"}, "condition.op"),
    ({"field": "segment", "op": "in", "value": ["vip"]}, "condition.value[0]"),
    ({**SMILE, "window_seconds": 9}, "condition.window_seconds"),
    ({**SMILE, "window_seconds": 604801}, "condition.window_seconds"),
    ({**SMILE, "window_seconds": 60.5}, "condition.window_seconds"),
    ({**SMILE, "min_frames": 0}, "condition.min_frames"),
    ({**SMILE, "min_frames": 10001}, "condition.min_frames"),
    ({**SMILE, "min_confidence": 1.01}, "condition.min_confidence"),
    ({**SMILE, "min_confidence": False}, "condition.min_confidence"),
    ({**MOBILE, "window_seconds": 60}, "condition.window_seconds"),
    ({"all": [MOBILE, {**MOBILE, "min_confidence": 0.5}]}, "condition.all[1].min_confidence"),
])
def test_bad_trees_name_the_offending_node(tree: Any, path: str) -> None:
    assert error_path(tree) == path


def test_the_callers_path_prefixes_the_error() -> None:
    assert error_path({"all": [MOBILE, {"field": "x"}]}, path="rules[2].condition") == "rules[2].condition.all[1].field"


def test_depth_six_is_allowed_and_seven_is_not() -> None:
    tree: Any = MOBILE
    for _ in range(5):
        tree = {"not": tree}
    assert condition_validate(tree)  # a leaf under five groups
    assert error_path({"all": [tree]}) == "condition.all[0]" + ".not" * 5


def test_more_than_fifty_nodes_is_refused_at_the_node_over_the_limit() -> None:
    children = [MOBILE] * 20
    fits = {"all": [{"all": children}, {"all": children}, {"all": [MOBILE] * 6}]}  # 1 + 3 + 46 = 50
    assert condition_validate(fits)
    over = {"all": [{"all": children}, {"all": children}, {"all": [MOBILE] * 7}]}
    assert error_path(over) == "condition.all[2].all[6]"
    assert MAX_NODES == 50


def test_expression_fields_are_refused_where_emotion_recognition_is_forbidden() -> None:
    for field in sorted(EXPRESSION_FIELDS):
        leaf = {"field": field, "op": "in" if field == "face.top_expression" else "gte",
                "value": ["happy"] if field == "face.top_expression" else 0.5}
        with pytest.raises(ConditionError) as caught:
            condition_validate({"any": [MOBILE, leaf]}, emotion_recognition_forbidden=True)
        assert caught.value.path == "condition.any[1].field"
        assert "EU AI Act Art. 5(1)(f)" in caught.value.message
    allowed = {"field": "face.attention_share", "op": "gte", "value": 0.5}
    assert condition_validate(allowed, emotion_recognition_forbidden=True)["field"] == "face.attention_share"


def test_segments_are_checked_with_the_callback() -> None:
    known = {"vip", "newsletter"}.__contains__
    tree = {"field": "segment", "op": "in", "value": ["vip", "newsletter"]}
    assert condition_validate(tree, segment_known=known)["value"] == ["vip", "newsletter"]
    assert condition_validate({"field": "segment", "op": "not_in", "value": "vip"}, segment_known=known)["value"] == [
        "vip"]
    assert error_path({"field": "segment", "op": "in", "value": ["vip", "other-org"]},
                      segment_known=known) == "condition.value[1]"


def test_validation_fills_defaults_normalises_and_leaves_the_input_alone() -> None:
    tree = {"all": [{"field": "face.smile_share", "op": "gte", "value": 1}, {"field": "request.language", "op": "eq",
            "value": "DE"}, {"field": "request.country", "op": "in", "value": ["de", "Fr"]},
            {"field": "request.referrer_host", "op": "ends_with", "value": "Google.DE"},
            {"field": "request.local_hour", "op": "between", "value": [8.0, 17]}]}
    before = copy.deepcopy(tree)
    normalised = condition_validate(tree)
    assert tree == before
    assert normalised["all"][0] == {"field": "face.smile_share", "op": "gte", "value": 1, "min_confidence": 0.5,
                                    "window_seconds": 900, "min_frames": 3}
    assert [leaf["value"] for leaf in normalised["all"][1:]] == ["de", ["DE", "FR"], "google.de", [8, 17]]
    assert condition_validate(normalised) == normalised  # idempotent


def test_uses_face_and_emotion_recognition() -> None:
    attention = {"field": "face.attention_share", "op": "gte", "value": 0.5}
    assert uses_face({"any": [MOBILE, {"not": attention}]}) and not uses_emotion_recognition(attention)
    assert uses_emotion_recognition({"all": [MOBILE, SMILE]}) and uses_face(SMILE)
    assert not uses_face({"all": [MOBILE]}) and not uses_face("junk") and not uses_face({"all": "x"})


def test_vocabulary_lists_every_field_with_its_operators() -> None:
    fields = {entry["field"]: entry for entry in condition_fields()}
    assert set(fields) == set(FIELDS)
    assert {name for name, entry in fields.items() if entry["face"]} == FACE_FIELDS
    assert {name for name, entry in fields.items() if entry["emotion"]} == EXPRESSION_FIELDS
    assert fields["face.smile_share"]["parameters"]["window_seconds"]["maximum"] == 604800
    assert fields["request.weekday"]["values"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert "exists" in fields["request.utm_source"]["operators"] and "exists" not in fields["request.device"][
        "operators"]
    assert all(entry["description"] for entry in fields.values())


def test_consent_vocabulary_agrees_with_the_consent_app() -> None:
    assert set(CONSENT_PURPOSES) <= set(Purpose.values)
    assert set(GRANT_STATES) == {state.value for state in GrantState}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from([*FIELDS, "all", "any", "not", "eq", "in", "between", "exists", "gte", "mobile", "happy"]),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(
        st.sampled_from(["all", "any", "not", "field", "op", "value", "min_confidence", "window_seconds",
                         "min_frames", "x"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=JSON, forbidden=st.booleans())
def test_junk_trees_raise_only_condition_errors(tree: Any, forbidden: bool) -> None:
    try:
        normalised = condition_validate(tree, emotion_recognition_forbidden=forbidden, segment_known=lambda k: k == "a")
    except ConditionError as error:
        assert error.path.startswith("condition")
    else:
        assert condition_validate(normalised) == normalised


# --- evaluation ---------------------------------------------------------------------------------------------------


def test_face_rule_matches_on_fresh_smiles() -> None:
    tree = condition_validate({"all": [MOBILE, SMILE]})
    assert rule_evaluate(tree, context(smiling_frames())) == RuleOutcome("matched", None, None)
    assert rule_evaluate(tree, context(smiling_frames(smile=0.1))) == RuleOutcome("not_matched",
                                                                                   "condition.all[1]", None)


@pytest.mark.parametrize("reason", ["no_subject", "no_face_analysis_consent", "no_personalization_consent"])
def test_face_rule_is_skipped_without_face_signals(reason: str) -> None:
    tree = condition_validate({"any": [MOBILE, {"not": SMILE}]})
    assert rule_evaluate(tree, context(None, unavailable=reason)) == RuleOutcome("skipped", "condition.any[1].not",
                                                                                 reason)


def test_not_over_missing_face_data_never_matches() -> None:
    tree = condition_validate({"not": {**SMILE, "min_frames": 10}})
    assert rule_evaluate(tree, context(smiling_frames(3))) == RuleOutcome("skipped", "condition.not",
                                                                          "no_fresh_features")
    # a later face leaf without data skips the rule even when an earlier branch would have matched
    tree = condition_validate({"any": [MOBILE, {"field": "face.gender", "op": "eq", "value": "male",
                                                "min_confidence": 0.99}]})
    assert rule_evaluate(tree, context(smiling_frames())) == RuleOutcome("skipped", "condition.any[1]",
                                                                         "no_fresh_features")


def test_expression_rule_is_skipped_where_emotion_recognition_is_forbidden() -> None:
    attention = {"field": "face.attention_share", "op": "gte", "value": 0.5}
    tree = condition_validate({"all": [attention, SMILE]})
    assert rule_evaluate(tree, context(smiling_frames(), forbidden=True)) == RuleOutcome(
        "skipped", "condition.all[1]", "emotion_recognition_forbidden")
    assert rule_evaluate(condition_validate(attention), context(smiling_frames(), forbidden=True)).status == "matched"


def test_non_face_rules_need_no_face_signals() -> None:
    tree = condition_validate({"all": [MOBILE, {"field": "consent.face_analysis", "op": "eq", "value": "none"},
                                       {"field": "segment", "op": "not_in", "value": ["vip"]}]},
                              segment_known=lambda key: True)
    assert rule_evaluate(tree, context(None, unavailable="no_subject")).status == "matched"
    assert rule_evaluate(tree, context(None, segments=frozenset({"vip"}))) == RuleOutcome("not_matched",
                                                                                          "condition.all[2]", None)


def test_not_matched_names_the_deciding_node() -> None:
    desktop = {"field": "request.device", "op": "eq", "value": "desktop"}
    assert rule_evaluate(condition_validate({"any": [desktop, desktop]}), context()).node == "condition"
    assert rule_evaluate(condition_validate({"any": [desktop]}), context()).node == "condition.any[0]"
    assert rule_evaluate(condition_validate({"not": MOBILE}), context()).node == "condition"
    assert rule_evaluate(condition_validate({"all": [MOBILE, {"any": [desktop, desktop]}]}), context()).node == (
        "condition.all[1]")


def test_request_fields_and_string_operators() -> None:
    cases = [
        ({"field": "request.utm_source", "op": "eq", "value": "newsletter"}, True),  # ignoring case
        ({"field": "request.utm_source", "op": "starts_with", "value": "NEWS"}, True),
        ({"field": "request.utm_medium", "op": "exists", "value": False}, True),
        ({"field": "request.utm_medium", "op": "ne", "value": "email"}, True),
        ({"field": "request.referrer_host", "op": "ends_with", "value": "google.de"}, True),
        ({"field": "request.referrer_host", "op": "contains", "value": "bing"}, False),
        ({"field": "request.language", "op": "in", "value": ["fr", "DE"]}, True),
        ({"field": "request.country", "op": "exists", "value": True}, True),
        ({"field": "request.local_hour", "op": "between", "value": [10, 10]}, True),  # 09:00 UTC is 10:00 in Berlin
        ({"field": "request.weekday", "op": "eq", "value": "mon"}, True),
        ({"field": "request.returning", "op": "eq", "value": False}, False),
        ({"field": "consent.partner_sharing", "op": "in", "value": ["none", "withdrawn"]}, True),
    ]
    for leaf, expected in cases:
        assert (rule_evaluate(condition_validate(leaf), context()).status == "matched") is expected, leaf


def test_comparisons_include_their_bounds() -> None:
    hour = {"field": "request.local_hour", "value": 10}  # 09:00 UTC is 10:00 in Berlin
    statuses = {op: rule_evaluate(condition_validate({**hour, "op": op}), context()).status
                for op in ("eq", "ne", "gt", "gte", "lt", "lte")}
    assert statuses == {"eq": "matched", "ne": "not_matched", "gt": "not_matched", "gte": "matched",
                        "lt": "not_matched", "lte": "matched"}
    share = {"field": "face.quality_share", "op": "between", "value": [0.5, 1.0]}
    assert rule_evaluate(condition_validate(share), context(smiling_frames())).status == "matched"


def test_malformed_saved_tree_does_not_match_even_under_not() -> None:
    assert rule_evaluate({"not": {"field": "request.colour", "op": "eq", "value": "x"}}, context()) == RuleOutcome(
        "not_matched", "condition.not", None)
    assert rule_evaluate({"not": {"field": "request.local_hour", "op": "gt", "value": "x"}}, context()) == (
        RuleOutcome("not_matched", "condition.not", None))
    assert rule_evaluate("junk", context()).status == "not_matched"


# --- random valid trees against a plain reference evaluator -----------------------------------------------------

WINDOWS = (60, 900)
HOURS = (0, 8, 12, 23)


def leaf_strategy() -> st.SearchStrategy[dict]:
    def value_for(entry: dict, op: str) -> st.SearchStrategy:
        kind = entry["kind"]
        if op == "exists":
            return st.booleans()
        if kind == "number":
            # the hours and shares a context has, so that boundaries (gte against equal) are hit often
            scalar = (st.sampled_from(HOURS) if entry["integer"] else st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
        elif kind == "bool":
            scalar = st.booleans()
        elif kind == "segment":
            scalar = st.sampled_from(["a", "b"])
        elif entry["values"]:
            scalar = st.sampled_from(entry["values"])
        else:
            scalar = st.sampled_from({"request.language": ["de", "fr"], "request.country": ["DE", "FR"],
                                      "request.referrer_host": ["www.google.de", "google", ".de"]}.get(
                entry["field"], ["news", "Newsletter", "x"]))
        if op in ("in", "not_in"):
            return st.lists(scalar, min_size=1, max_size=3)
        if op == "between":
            return st.lists(scalar, min_size=2, max_size=2).map(sorted)
        return scalar

    def build(entry: dict) -> st.SearchStrategy[dict]:
        def with_op(op: str) -> st.SearchStrategy[dict]:
            base = st.fixed_dictionaries({"field": st.just(entry["field"]), "op": st.just(op),
                                          "value": value_for(entry, op)})
            if not entry["face"]:
                return base
            return st.tuples(base, st.sampled_from(WINDOWS), st.sampled_from([0.0, 0.5, 0.8]),
                             st.integers(1, 4)).map(lambda t: {**t[0], "window_seconds": t[1],
                                                               "min_confidence": t[2], "min_frames": t[3]})
        return st.sampled_from(entry["operators"]).flatmap(with_op)

    return st.sampled_from(condition_fields()).flatmap(build)


TREES = st.recursive(
    leaf_strategy(),
    lambda children: st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c})
    | st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}) | children.map(lambda c: {"not": c}),
    max_leaves=6,
)

FRAMES = st.lists(st.builds(
    FrameSignal,
    at=st.floats(NOW - 1000, NOW), counting=st.booleans(), looking=st.none() | st.booleans(),
    smile=st.none() | st.sampled_from([0.0, 0.4, 0.5, 0.9]), expression=st.sampled_from(["", "happy", "sad"]),
    expression_confidence=st.none() | st.sampled_from([0.3, 0.6, 0.9]),
    expression_probabilities=st.none() | st.just({"happy": 0.6, "sad": 0.4}),
    age_years=st.none() | st.sampled_from([16.0, 30.0, 70.0]), gender=st.sampled_from(["", "female", "male"]),
    gender_confidence=st.none() | st.sampled_from([0.4, 0.9]),
), max_size=12)

CONTEXTS = st.builds(
    lambda frames, face_missing, unavailable, forbidden, consent, segments, hour, utm, returning: EvaluationContext(
        request=RequestAttributes(device="mobile", language="de", country="", utm=utm, referrer_host="www.google.de",
                                  local_hour=hour, weekday="sat", returning=returning),
        consent=consent, face=None if face_missing else FaceSignals(frames, now=NOW),
        face_unavailable=unavailable if face_missing else None, segments=segments,
        emotion_recognition_forbidden=forbidden),
    FRAMES, st.booleans(), st.sampled_from(["no_subject", "no_personalization_consent"]), st.booleans(),
    st.dictionaries(st.sampled_from(CONSENT_PURPOSES), st.sampled_from(GRANT_STATES), max_size=3),
    st.frozensets(st.sampled_from(["a", "b"])), st.sampled_from(HOURS),
    st.dictionaries(st.sampled_from(["utm_source", "utm_medium"]), st.sampled_from(["news", "NEWSLETTER"])),
    st.booleans(),
)


def reference_value(leaf: dict, ctx: EvaluationContext) -> Any:
    """The plain reading of a field, written independently of the module (face values through FaceSignals)."""
    name = leaf["field"]
    if name.startswith("face."):
        return ctx.face.read(name, window_seconds=leaf["window_seconds"], min_confidence=leaf["min_confidence"],
                             min_frames=leaf["min_frames"])
    if name.startswith("consent."):
        return ctx.consent.get(name.split(".", 1)[1], "none")
    if name == "segment":
        return ctx.segments
    key = name.split(".", 1)[1]
    return ctx.request.utm.get(key, "") if key.startswith("utm_") else getattr(ctx.request, key)


def reference_leaf(leaf: dict, ctx: EvaluationContext) -> bool:
    actual, op, value = reference_value(leaf, ctx), leaf["op"], leaf["value"]
    if leaf["field"] == "segment":
        hit = bool(set(value) & set(actual))
        return hit if op == "in" else not hit
    if op == "exists":
        return (actual != "") == value
    if leaf["field"].startswith("request.utm_"):
        actual = actual.lower()
        value = [v.lower() for v in value] if isinstance(value, list) else value.lower()
    return {
        "eq": lambda: actual == value, "ne": lambda: actual != value, "in": lambda: actual in value,
        "not_in": lambda: actual not in value, "gt": lambda: actual > value, "gte": lambda: actual >= value,
        "lt": lambda: actual < value, "lte": lambda: actual <= value,
        "between": lambda: value[0] <= actual <= value[1], "contains": lambda: value in actual,
        "starts_with": lambda: actual.startswith(value), "ends_with": lambda: actual.endswith(value),
    }[op]()


def all_leaves(tree: dict) -> list[dict]:
    if "all" in tree or "any" in tree:
        return [leaf for child in tree.get("all", tree.get("any")) for leaf in all_leaves(child)]
    if "not" in tree:
        return all_leaves(tree["not"])
    return [tree]


def reference_match(tree: dict, ctx: EvaluationContext) -> bool:
    if "all" in tree:
        return all(reference_match(child, ctx) for child in tree["all"])
    if "any" in tree:
        return any(reference_match(child, ctx) for child in tree["any"])
    if "not" in tree:
        return not reference_match(tree["not"], ctx)
    return reference_leaf(tree, ctx)


def reference_status(tree: dict, ctx: EvaluationContext) -> tuple[str, str | None]:
    face = [leaf for leaf in all_leaves(tree) if leaf["field"].startswith("face.")]
    if face:
        if ctx.emotion_recognition_forbidden and any(leaf["field"] in EXPRESSION_FIELDS for leaf in face):
            return "skipped", "emotion_recognition_forbidden"
        if ctx.face is None:
            return "skipped", ctx.face_unavailable
        if any(reference_value(leaf, ctx) is None for leaf in face):
            return "skipped", "no_fresh_features"
    return ("matched" if reference_match(tree, ctx) else "not_matched"), None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, ctx=CONTEXTS)
def test_rule_evaluate_agrees_with_a_plain_reference(tree: dict, ctx: EvaluationContext) -> None:
    normalised = condition_validate(tree, segment_known=lambda key: True)
    assert normalised == tree  # the generated trees are already in normal form
    outcome = rule_evaluate(normalised, ctx)
    assert (outcome.status, outcome.reason) == reference_status(tree, ctx)
    if outcome.status == "matched":
        assert outcome.node is None
    else:
        assert outcome.node is not None and outcome.node.startswith("condition")
