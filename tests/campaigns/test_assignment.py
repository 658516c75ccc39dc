"""Assignment agrees with GrowthBook's own SDK test cases, is deterministic, honours coverage and the holdout share,
and keeps a visitor's bucket when the weights change.

Expected values are copied from GrowthBook's behavioural test suite, growthbook/growthbook
packages/sdk-js/test/cases.json (specVersion 0.5.4, commit 021bf498f75c8491c156184ca1b3a1fbafa1d64e): the "hash",
"getBucketRange", "chooseVariation" and "getEqualWeights" sections, and bucket values reported by its "feature",
"run" and "stickyBucket" cases that use hashVersion 2.
"""

from __future__ import annotations

import math

import pytest

from campaigns.assignment import (
    HOLDOUT_SALT,
    Assignment,
    assign,
    bucket_ranges,
    choose_arm,
    equal_weights,
    fnv1a32,
    hash_v2,
)

# cases.json "hash": [seed, value, version, expected]; version 2 is what campaigns.assignment implements.
HASH_V2_CASES = [
    ("seed", "a", 0.0505),
    ("seed", "b", 0.2696),
    ("foo", "ab", 0.2575),
    ("foo", "def", 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 0.124),
    ("90850943850283058242805", "123", 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 0.0128),
]

# cases.json "hash" version 1 is (fnv1a32(value + seed) % 1000) / 1000: it checks fnv1a32 on its own.
HASH_V1_CASES = [
    ("", "a", 0.22),
    ("", "b", 0.077),
    ("b", "a", 0.946),
    ("ef", "d", 0.652),
    ("asdf", "8952klfjas09ujk", 0.549),
    ("", "123", 0.011),
    ("", '___)((*":&', 0.563),
]

# Buckets GrowthBook reports in experimentResult.bucket for hashVersion 2 rules (seed = the rule's seed or key).
REPORTED_BUCKETS = [
    ("feature", "123", 0.5231),  # feature: "creates experiments properly"
    ("experiment", "1", 0.4413),  # feature: "Support passthrough variations"
    ("holdout", "1", 0.8043),  # feature: "Support holdout groups"
    ("feature-exp", "d123", 0.6468),  # stickyBucket: "performs evaluation without sticky bucket"
    ("feature-exp", "i123", 0.9943),  # stickyBucket: "resets sticky bucketing when the bucketVersion changes"
]

# cases.json "getBucketRange": [name, [numVariations, coverage, weights | null], expected ranges].
BUCKET_RANGE_CASES = [
    ("normal 50/50", 2, 1, None, [(0, 0.5), (0.5, 1)]),
    ("reduced coverage", 2, 0.5, None, [(0, 0.25), (0.5, 0.75)]),
    ("zero coverage", 2, 0, None, [(0, 0), (0.5, 0.5)]),
    ("4 variations", 4, 1, None, [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("uneven weights", 2, 1, [0.4, 0.6], [(0, 0.4), (0.4, 1)]),
    ("uneven weights, 3 variations", 3, 1, [0.2, 0.3, 0.5], [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ("uneven weights, reduced coverage, 3 variations", 3, 0.2, [0.2, 0.3, 0.5], [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ("negative coverage", 2, -0.2, None, [(0, 0), (0.5, 0.5)]),
    ("coverage above 1", 2, 1.5, None, [(0, 0.5), (0.5, 1)]),
    ("weights sum below 1", 2, 1, [0.4, 0.1], [(0, 0.5), (0.5, 1)]),
    ("weights sum above 1", 2, 1, [0.7, 0.6], [(0, 0.5), (0.5, 1)]),
    ("weights.length not equal to num variations", 4, 1, [0.4, 0.4, 0.2],
     [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("weights sum almost equals 1", 2, 1, [0.4, 0.5999], [(0, 0.4), (0.4, 0.9999)]),
]

# cases.json "chooseVariation": [name, bucket, ranges, expected index (-1: none)].
EVEN = [(0, 0.5), (0.5, 1)]
REDUCED = [(0, 0.25), (0.5, 0.75)]
CHOOSE_CASES = [
    ("even range, 0.2", 0.2, EVEN, 0),
    ("even range, 0.4", 0.4, EVEN, 0),
    ("even range, 0.6", 0.6, EVEN, 1),
    ("even range, 0.8", 0.8, EVEN, 1),
    ("even range, 0", 0, EVEN, 0),
    ("even range, 0.5", 0.5, EVEN, 1),
    ("reduced range, 0.2", 0.2, REDUCED, 0),
    ("reduced range, 0.4", 0.4, REDUCED, -1),
    ("reduced range, 0.6", 0.6, REDUCED, 1),
    ("reduced range, 0.8", 0.8, REDUCED, -1),
    ("reduced range, 0.25", 0.25, REDUCED, -1),
    ("reduced range, 0.5", 0.5, REDUCED, 1),
    ("zero range", 0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),
]

# cases.json "getEqualWeights": [numVariations, expected] (GrowthBook rounds to 8 places in the file).
EQUAL_WEIGHT_CASES = [(-1, []), (0, []), (1, [1]), (2, [0.5, 0.5]), (3, [0.33333333] * 3), (4, [0.25] * 4)]

# cases.json "run" cases with hashVersion 2, attributes {"id": "1"}, seed "foo": [weights, coverage, expected arm].
RUN_CASES = [
    ("Uses seed and hash version", None, 1.0, 1),
    ("Uses seed with default weights/coverage", None, 1.0, 1),
    ("Uses seed with weights/coverage", [0.5, 0.5], 0.99, 1),
]


@pytest.mark.parametrize(("seed", "value", "expected"), HASH_V2_CASES)
def test_hash_v2_matches_growthbook(seed: str, value: str, expected: float) -> None:
    assert hash_v2(seed, value) == expected


@pytest.mark.parametrize(("seed", "value", "expected"), HASH_V1_CASES)
def test_fnv1a32_matches_growthbook_hash_v1(seed: str, value: str, expected: float) -> None:
    assert (fnv1a32(value + seed) % 1000) / 1000 == expected


@pytest.mark.parametrize(("seed", "value", "expected"), REPORTED_BUCKETS)
def test_bucket_matches_growthbook_experiment_results(seed: str, value: str, expected: float) -> None:
    assert hash_v2(seed, value) == expected


def test_fnv1a32_hashes_utf16_code_units_like_javascript() -> None:
    # "😀" is two UTF-16 code units (a surrogate pair), as JavaScript's charCodeAt sees it.
    value = 0x811C9DC5
    for unit in (0xD83D, 0xDE00):
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    assert fnv1a32("😀") == value
    assert fnv1a32("é") != fnv1a32("e")


@pytest.mark.parametrize(("name", "arms", "coverage", "weights", "expected"), BUCKET_RANGE_CASES,
                         ids=[case[0] for case in BUCKET_RANGE_CASES])
def test_bucket_ranges_match_growthbook(name: str, arms: int, coverage: float, weights: list[float] | None,
                                        expected: list[tuple[float, float]]) -> None:
    ranges = bucket_ranges(weights if weights is not None else equal_weights(arms), coverage, arms=arms)
    assert len(ranges) == len(expected)
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-12)
        assert end == pytest.approx(want_end, abs=1e-12)


@pytest.mark.parametrize(("name", "bucket", "ranges", "expected"), CHOOSE_CASES, ids=[case[0] for case in CHOOSE_CASES])
def test_choose_arm_matches_growthbook(name: str, bucket: float, ranges: list, expected: int) -> None:
    assert choose_arm(bucket, ranges) == (None if expected == -1 else expected)


@pytest.mark.parametrize(("arms", "expected"), EQUAL_WEIGHT_CASES)
def test_equal_weights_match_growthbook(arms: int, expected: list[float]) -> None:
    assert equal_weights(arms) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(("name", "weights", "coverage", "expected"), RUN_CASES, ids=[case[0] for case in RUN_CASES])
def test_run_cases_pick_growthbooks_arm(name: str, weights: list[float] | None, coverage: float, expected: int) -> None:
    ranges = bucket_ranges(weights or equal_weights(2), coverage)
    assert assign(seed="foo", visitor_id="1", ranges=ranges, holdout=0.0) == Assignment(arm=expected)


def test_sticky_bucket_case_with_uneven_thirds_picks_growthbooks_arm() -> None:
    # stickyBucket "performs evaluation without sticky bucket": weights [0.3334, 0.3333, 0.3333] -> variation 1.
    ranges = bucket_ranges([0.3334, 0.3333, 0.3333], 1.0)
    assert assign(seed="feature-exp", visitor_id="d123", ranges=ranges, holdout=0.0).arm == 1
    assert assign(seed="feature-exp", visitor_id="i123", ranges=ranges, holdout=0.0).arm == 2


# --- Properties over many visitors ----------------------------------------------------------------------------------

VISITORS = [f"visitor-{i}" for i in range(20_000)]


def _within_binomial(count: int, trials: int, share: float, sds: float = 4.0) -> bool:
    """count is within `sds` binomial standard deviations of trials * share (4 sd: a false alarm ~1 in 16,000)."""
    return abs(count - trials * share) <= sds * math.sqrt(trials * share * (1 - share))


def test_assignment_is_deterministic_in_seed_and_visitor() -> None:
    ranges = bucket_ranges([0.2, 0.3, 0.5], 0.8)
    first = [assign(seed="exp-1", visitor_id=v, ranges=ranges, holdout=0.1) for v in VISITORS[:2000]]
    again = [assign(seed="exp-1", visitor_id=v, ranges=ranges, holdout=0.1) for v in VISITORS[:2000]]
    other_seed = [assign(seed="exp-2", visitor_id=v, ranges=ranges, holdout=0.1) for v in VISITORS[:2000]]
    assert first == again
    assert first != other_seed


def test_coverage_admits_its_share_and_arms_split_by_weight() -> None:
    weights, coverage = [0.2, 0.3, 0.5], 0.6
    ranges = bucket_ranges(weights, coverage)
    results = [assign(seed="coverage", visitor_id=v, ranges=ranges, holdout=0.0) for v in VISITORS]
    entered = [r for r in results if r.entered]
    assert _within_binomial(len(entered), len(VISITORS), coverage)
    for arm, weight in enumerate(weights):
        assert _within_binomial(sum(r.arm == arm for r in entered), len(entered), weight)


def test_holdout_takes_its_share_of_entrants() -> None:
    ranges = bucket_ranges([0.5, 0.5], 0.8)
    results = [assign(seed="holdout-test", visitor_id=v, ranges=ranges, holdout=0.1) for v in VISITORS]
    entered = [r for r in results if r.entered]
    held_out = [r for r in entered if r.holdout]
    assert all(r.arm is None for r in held_out)
    assert _within_binomial(len(held_out), len(entered), 0.1)
    # The holdout hash is independent of the arm hash: both arms lose about the same share.
    in_arms = [r.arm for r in entered if not r.holdout]
    assert _within_binomial(in_arms.count(0), len(in_arms), 0.5)


def test_holdout_uses_its_own_salted_hash() -> None:
    ranges = bucket_ranges([1.0], 1.0)
    for visitor in VISITORS[:500]:
        held = assign(seed="s", visitor_id=visitor, ranges=ranges, holdout=0.3).holdout
        assert held == (hash_v2("s" + HOLDOUT_SALT, visitor) < 0.3)


def test_changing_weights_keeps_each_visitors_bucket() -> None:
    """The bucket depends on seed and visitor only, so a reweighting (a bandit update) moves only the visitors
    whose bucket now falls in another arm's range: those below 0.4 stay in arm 0, those from 0.5 on in arm 1."""
    before, after = bucket_ranges([0.5, 0.5], 1.0), bucket_ranges([0.4, 0.6], 1.0)
    moved = 0
    for visitor in VISITORS[:5000]:
        bucket = hash_v2("reweight", visitor)
        old = assign(seed="reweight", visitor_id=visitor, ranges=before, holdout=0.2)
        new = assign(seed="reweight", visitor_id=visitor, ranges=after, holdout=0.2)
        assert old.holdout == new.holdout
        if old.holdout:
            continue
        if bucket < 0.4:
            assert old.arm == new.arm == 0
        elif bucket >= 0.5:
            assert old.arm == new.arm == 1
        else:
            assert (old.arm, new.arm) == (0, 1)
            moved += 1
    assert _within_binomial(moved, 5000, 0.1 * 0.8, sds=5)
