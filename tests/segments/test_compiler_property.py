"""Property: over random definitions (every field of segments.conditions.FIELDS, nested all/any/not) and random
small worlds (grants active, withdrawn, expired or missing; frames inside, outside and exactly on a window's
edge, with values on the thresholds; events with and without values), the SQL compiler
(`segments.compiler.members_query`) and the plain-Python reference (tests/segments/reference.py) name the same
members, and the one-subject form agrees with the full query for every subject.

Examples are bounded so the file runs in about a minute on PostgreSQL and on SQLite; they are random per run."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import Grant
from consent.services import consent_withdraw, subject_erase
from faceanalysis.aggregates import SMILE_THRESHOLD
from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.signals import AGE_BANDS
from segments.compiler import members_query
from segments.conditions import (
    CONSENT_PURPOSES,
    EXPRESSION_SHARE_PREFIX,
    FIELDS,
    INTEGER_OPERATORS,
    LABEL_OPERATORS,
    NUMBER_OPERATORS,
)
from segments.selectors import segment_members
from segments.services import definition_check, segment_recompute, segment_save
from tests.factories import make_campaign, make_organization, make_variant
from tests.segments.factories import World
from tests.segments.reference import Reference, load

pytestmark = pytest.mark.django_db

EXAMPLES = settings(
    max_examples=int(os.environ.get("VISAGE_HYPOTHESIS_EXAMPLES", "70")), deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
WINDOWS = (HOUR, DAY, WEEK)
# Seconds before now: on each window's edge and just past it, and a minute in the future.
OFFSETS = (0, 60, HOUR, HOUR + 1, DAY, DAY + 1, 3 * DAY, WEEK, WEEK + 1, 30 * DAY, -60)
CREATED = (0, DAY - 1, DAY, DAY + 1, 2 * DAY, 10 * DAY)
CONSENT_STATES = ("active", "active", "active", "withdrawn", "expired", "expired_now", "none")
BASE_KEY = "base"

# --- random data --------------------------------------------------------------------------------------------------

frames_st = st.fixed_dictionaries({
    "offset": st.sampled_from(OFFSETS),
    "face_count": st.sampled_from((1, 1, 1, 2, 0)),
    "quality_ok": st.sampled_from((True, True, True, False)),
    "looking": st.sampled_from((None, True, False)),
    "smile": st.sampled_from((None, 0.0, 0.49, SMILE_THRESHOLD, 0.9)),
    "expression": st.sampled_from(("", "happy", "happy", "neutral", "surprise")),
    "expression_confidence": st.sampled_from((None, 0.3, 0.5, 0.8)),
    "age_years": st.sampled_from((None, 17.9, 18.0, 24.0, 25.0, 26.0, 34.5, 35.0, 70.0)),
    "gender": st.sampled_from(("", "female", "male", "female", "male")),
    "gender_confidence": st.sampled_from((None, 0.4, 0.5, 0.9, 0.9)),
})
sessions_st = st.fixed_dictionaries({
    "offset": st.sampled_from(OFFSETS),
    "campaign": st.sampled_from((0, 1)),
    "frames": st.lists(frames_st, max_size=5),
})
events_st = st.fixed_dictionaries({
    "kind": st.sampled_from(("impression", "click", "conversion", "conversion", "custom")),
    "name": st.sampled_from(("", "purchase", "signup")),
    "value": st.sampled_from((None, Decimal("0"), Decimal("10.5"), Decimal("19.5"), Decimal("30"))),
    "offset": st.sampled_from(OFFSETS),
    "campaign": st.sampled_from((0, 1)),
})
subjects_st = st.fixed_dictionaries({
    # Mostly live on every purpose, so that face conditions have subjects to look at.
    "consent": st.one_of(
        st.just(dict.fromkeys(CONSENT_PURPOSES, "active")),
        st.fixed_dictionaries({p: st.sampled_from(CONSENT_STATES) for p in CONSENT_PURPOSES}),
    ),
    "erased": st.sampled_from((False, False, False, False, True)),
    "partner": st.booleans(),
    "created": st.sampled_from(CREATED),
    "sessions": st.lists(sessions_st, max_size=2),
    "events": st.lists(events_st, max_size=4),
})
worlds = st.lists(subjects_st, min_size=1, max_size=4)

# --- random definitions -------------------------------------------------------------------------------------------

SHARES = (0.0, 0.25, 0.5, 0.6, 2 / 3, 1.0)
COUNTS = (0, 1, 2)
AMOUNTS = (0.0, 10.5, 30.0, 50.0)
DAYS = (0, 1, 2, 10)
CONSENT_VALUES = ("active", "withdrawn", "expired", "none", "subject_erased")


def _numbers(ops: tuple[str, ...], values: tuple) -> st.SearchStrategy:
    def value(op: str) -> st.SearchStrategy:
        if op == "between":
            return st.lists(st.sampled_from(values), min_size=2, max_size=2).map(sorted)
        if op in ("in", "not_in"):
            return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)
        return st.sampled_from(values)

    return st.sampled_from(ops).flatmap(lambda op: value(op).map(lambda v: (op, v)))


def _labels(values: tuple[str, ...]) -> st.SearchStrategy:
    def value(op: str) -> st.SearchStrategy:
        if op in ("in", "not_in"):
            return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)
        return st.sampled_from(values)

    return st.sampled_from(LABEL_OPERATORS).flatmap(lambda op: value(op).map(lambda v: (op, v)))


def _leaf(field: str, compared: st.SearchStrategy, /, **parameters: st.SearchStrategy) -> st.SearchStrategy:
    def build(pair: tuple, extra: dict) -> dict:
        return {"field": field, "op": pair[0], "value": pair[1], **{k: v for k, v in extra.items() if v is not None}}

    return st.builds(build, compared, st.fixed_dictionaries(parameters))


def leaves(campaigns: tuple[int, int], *, segments: bool) -> st.SearchStrategy:
    window = st.sampled_from(WINDOWS)
    min_frames = st.sampled_from((1, 2, 3))
    campaign = st.sampled_from((None, None, *campaigns))
    confidence = st.sampled_from((0.3, 0.5, 0.8))
    face = {"window_seconds": window, "min_frames": min_frames, "campaign": campaign}
    events = {"window_seconds": window, "campaign": campaign, "name": st.sampled_from((None, "purchase", "signup"))}
    options = [
        _leaf("face.attention_share", _numbers(NUMBER_OPERATORS, SHARES), **face),
        _leaf("face.smile_share", _numbers(NUMBER_OPERATORS, SHARES), **face),
        *(_leaf(f"{EXPRESSION_SHARE_PREFIX}{label}", _numbers(NUMBER_OPERATORS, SHARES), **face,
                min_confidence=confidence) for label in ("happy", "neutral", "surprise")),
        _leaf("face.age_band", _labels(AGE_BANDS), **face),
        _leaf("face.gender", _labels(("female", "male")), **face, min_confidence=confidence),
        _leaf("face.sessions", _numbers(INTEGER_OPERATORS, COUNTS), window_seconds=window, campaign=campaign),
        *(_leaf(name, _numbers(INTEGER_OPERATORS, COUNTS), **events)
          for name in ("behaviour.impressions", "behaviour.clicks", "behaviour.conversions")),
        _leaf("behaviour.custom_events", _numbers(INTEGER_OPERATORS, COUNTS), **{
            **events, "name": st.sampled_from(("purchase", "signup"))}),
        _leaf("behaviour.conversion_value", _numbers(NUMBER_OPERATORS, AMOUNTS), **events),
        *(_leaf(f"consent.{purpose}", _labels(CONSENT_VALUES)) for purpose in CONSENT_PURPOSES),
        _leaf("subject.days_since_first_seen", _numbers(INTEGER_OPERATORS, DAYS)),
        _leaf("subject.partner_linked", st.tuples(st.sampled_from(("eq", "ne")), st.booleans())),
    ]
    if segments:
        options.append(_leaf("segment", st.tuples(st.sampled_from(("in", "not_in")), st.just([BASE_KEY]))))
    return st.one_of(options)


def trees(leaf: st.SearchStrategy, depth: int = 3) -> st.SearchStrategy:
    if depth == 0:
        return leaf
    child = trees(leaf, depth - 1)
    return st.one_of(
        leaf, leaf,
        st.lists(child, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(child, min_size=1, max_size=3).map(lambda items: {"any": items}),
        child.map(lambda item: {"not": item}),
    )


def test_the_strategies_cover_every_field() -> None:
    covered = {"face.expression_share.happy", "face.expression_share.neutral", "face.expression_share.surprise"}
    generated = {"face.attention_share", "face.smile_share", "face.age_band", "face.gender", "face.sessions",
                 "behaviour.impressions", "behaviour.clicks", "behaviour.conversions", "behaviour.custom_events",
                 "behaviour.conversion_value", "subject.days_since_first_seen", "subject.partner_linked", "segment",
                 *(f"consent.{p}" for p in CONSENT_PURPOSES)}
    others = {f"{EXPRESSION_SHARE_PREFIX}{label}" for label in EXPRESSION_LABELS} - covered
    # The other expression labels compile as these three do (one code path, the label a parameter).
    assert set(FIELDS) == covered | generated | others


# --- the world ----------------------------------------------------------------------------------------------------


def build(world_spec: list[dict], now: datetime, world: World, campaigns: tuple) -> list[int]:
    """The subjects of `world_spec` with their rows; consent is ended or run out after their sessions exist."""
    ids = []
    for i, spec in enumerate(world_spec):
        granted = tuple(p for p, state in spec["consent"].items() if state != "none")
        subject = world.subject(
            purposes=granted, created_at=now - timedelta(seconds=spec["created"]),
            partner_user_id=f"partner-{i}" if spec["partner"] else None,
        )
        if spec["consent"]["face_analysis"] != "none":  # frames exist only under a face-analysis grant
            for session_spec in spec["sessions"]:
                session = world.session(subject, started_at=now - timedelta(seconds=session_spec["offset"]),
                                        campaign=campaigns[session_spec["campaign"]])
                for f in session_spec["frames"]:
                    world.frame(session, at=now - timedelta(seconds=f["offset"]), face_count=f["face_count"],
                                quality_ok=f["quality_ok"], looking=f["looking"], smile=f["smile"],
                                expression=f["expression"], expression_confidence=f["expression_confidence"],
                                age_years=f["age_years"], gender=f["gender"],
                                gender_confidence=f["gender_confidence"])
        for e in spec["events"]:
            world.event(subject, e["kind"], at=now - timedelta(seconds=e["offset"]), name=e["name"],
                        value=e["value"], campaign=campaigns[e["campaign"]])
        withdrawn = [p for p, state in spec["consent"].items() if state == "withdrawn"]
        if withdrawn:
            consent_withdraw(organization=world.organization, subject=subject, purposes=withdrawn,
                             channel="partner_api")
        for purpose, state in spec["consent"].items():
            if state in ("expired", "expired_now"):
                Grant.objects.filter(subject=subject, purpose=purpose, ended_at__isnull=True).update(
                    expires_at=now - timedelta(hours=1) if state == "expired" else now)
        if spec["erased"]:
            subject_erase(organization=world.organization, subject=subject, channel="partner_api")
        ids.append(subject.pk)
    return ids


def _new_world() -> tuple[World, tuple[int, int]]:
    organization = make_organization(name="Prop")
    world = World(organization)
    other = make_campaign(organization, purposes=("face_analysis", "personalization"))
    if not other.variants.exists():
        make_variant(other, key="standard", default=True)
    return world, (world.campaign, other)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple:
    # Campaign ids are known only once the world exists; definitions name them by index 1 and 2.
    spec = draw(worlds)
    base = draw(trees(leaves((-1, -2), segments=False), depth=2))
    tree = draw(trees(leaves((-1, -2), segments=True)))
    return spec, base, tree


def _with_campaigns(tree: dict, ids: tuple[int, int]) -> dict:
    if "all" in tree or "any" in tree:
        kind = "all" if "all" in tree else "any"
        return {kind: [_with_campaigns(child, ids) for child in tree[kind]]}
    if "not" in tree:
        return {"not": _with_campaigns(tree["not"], ids)}
    if tree.get("campaign") in (-1, -2):
        return {**tree, "campaign": ids[-tree["campaign"] - 1]}
    return tree


def check(spec: list[dict], base_tree: dict, tree: dict) -> list[int]:
    """Build the world, compute the base segment, and hold the compiler to the reference (full query and one
    subject at a time); the members, in the order of `spec`, as booleans."""
    now = timezone.now()
    world, campaigns = _new_world()
    organization = world.organization
    campaign_ids = (campaigns[0].pk, campaigns[1].pk)
    subject_ids = build(spec, now, world, campaigns)
    rows = load(organization.pk, now=now)

    # The segment the tree may name: computed by a full run at `now`, held to the reference first.
    base = segment_save(organization=organization, key=BASE_KEY, name="Base",
                        definition=_with_campaigns(base_tree, campaign_ids))
    segment_recompute(segment_id=base.pk, now=now)
    base_members = Reference(rows, now=now).members(base.definition)
    assert {m.subject_id for m in segment_members(segment=base, now=now)} == base_members, base.definition

    checked = definition_check(organization_id=organization.pk, definition=_with_campaigns(tree, campaign_ids))
    expected = Reference(rows, now=now, segments={BASE_KEY: base_members}).members(checked)
    compiled = set(members_query(checked, organization_id=organization.pk, now=now).values_list("pk", flat=True))
    assert compiled == expected, checked
    for subject_id in subject_ids:
        one = members_query(checked, organization_id=organization.pk, now=now, subject_id=subject_id)
        assert one.exists() == (subject_id in compiled), (subject_id, checked)
    return [subject_id in compiled for subject_id in subject_ids]


@EXAMPLES
@given(scenario=scenarios())
def test_the_compiled_query_names_the_members_the_reference_names(db, scenario: tuple) -> None:
    check(*scenario)


# --- the edges, by hand: each world's expected members are written out, not only compared -------------------------

LIVE = dict.fromkeys(CONSENT_PURPOSES, "active")


def _frame(offset: int = 60, **values: object) -> dict:
    frame = {"offset": offset, "face_count": 1, "quality_ok": True, "looking": None, "smile": None, "expression": "",
             "expression_confidence": None, "age_years": None, "gender": "", "gender_confidence": None}
    return {**frame, **values}


def _subject(frames: list[dict] = (), *, consent: dict = LIVE, events: list[dict] = (), created: int = 0) -> dict:
    return {"consent": consent, "erased": False, "partner": False, "created": created,
            "sessions": [{"offset": 60, "campaign": 0, "frames": list(frames)}] if frames else [],
            "events": list(events)}


EVERYONE = {"field": "subject.partner_linked", "op": "eq", "value": False}
EDGES = {
    "gender tie goes to the newest frame": (
        [_subject([_frame(120, gender="male", gender_confidence=0.9), _frame(60, gender="female",
                                                                             gender_confidence=0.9)]),
         _subject([_frame(60, gender="male", gender_confidence=0.9), _frame(60, gender="female",
                                                                            gender_confidence=0.9)])],
        {"field": "face.gender", "op": "eq", "value": "female", "min_frames": 1}, [True, False]),
    "gender tie at one time is no estimate either way": (
        [_subject([_frame(60, gender="male", gender_confidence=0.9), _frame(60, gender="female",
                                                                            gender_confidence=0.9)])],
        {"any": [{"field": "face.gender", "op": "eq", "value": "female", "min_frames": 1},
                 {"field": "face.gender", "op": "ne", "value": "female", "min_frames": 1}]}, [False]),
    "a smile on the threshold counts": (
        [_subject([_frame(smile=SMILE_THRESHOLD)]), _subject([_frame(smile=0.49)])],
        {"field": "face.smile_share", "op": "gte", "value": 1.0, "min_frames": 1}, [True, False]),
    "a median on a band's lower edge is in that band": (
        [_subject([_frame(age_years=24.0), _frame(age_years=26.0)]), _subject([_frame(age_years=24.9)])],
        {"field": "face.age_band", "op": "eq", "value": "25_34", "min_frames": 1}, [True, False]),
    "a frame exactly on the window's edge is inside": (
        [_subject([_frame(HOUR, looking=True)]), _subject([_frame(HOUR + 1, looking=True)])],
        {"field": "face.attention_share", "op": "gte", "value": 0.5, "min_frames": 1, "window_seconds": HOUR},
        [True, False]),
    "too few frames: no share, so not(share) holds": (
        [_subject([_frame(looking=True), _frame(looking=True)])],
        {"not": {"field": "face.attention_share", "op": "gte", "value": 0.0, "min_frames": 3}}, [True]),
    "no consent to the face: out of a face condition, even negated": (
        [_subject([_frame(looking=True)], consent={**LIVE, "personalization": "withdrawn"})],
        {"not": {"field": "face.attention_share", "op": "gte", "value": 0.5, "min_frames": 1}}, [False]),
    "zero conversions matches subjects without events, and values sum": (
        [_subject(), _subject(events=[{"kind": "conversion", "name": "", "value": Decimal("10.5"), "offset": 60,
                                       "campaign": 0},
                                      {"kind": "conversion", "name": "", "value": Decimal("19.5"), "offset": 60,
                                       "campaign": 1},
                                      {"kind": "conversion", "name": "", "value": None, "offset": 60,
                                       "campaign": 0}])],
        {"any": [{"field": "behaviour.conversions", "op": "eq", "value": 0},
                 {"field": "behaviour.conversion_value", "op": "between", "value": [30.0, 30.0]}]}, [True, True]),
    "consent states: expired now, none, withdrawn": (
        [_subject(consent={**LIVE, "partner_sharing": "expired_now"}),
         _subject(consent={**LIVE, "partner_sharing": "none"}),
         _subject(consent={**LIVE, "partner_sharing": "withdrawn"}), _subject()],
        {"field": "consent.partner_sharing", "op": "in", "value": ["expired", "none"]}, [True, True, False, False]),
    "whole days since first seen": (
        [_subject(created=DAY - 1), _subject(created=DAY), _subject(created=2 * DAY - 1)],
        {"field": "subject.days_since_first_seen", "op": "eq", "value": 1}, [False, True, True]),
}


@pytest.mark.parametrize("case", list(EDGES), ids=list(EDGES))
def test_the_edges_fall_on_the_documented_side(db, case: str) -> None:
    spec, tree, members = EDGES[case]
    assert check(spec, EVERYONE, tree) == members
