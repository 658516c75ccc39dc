"""Which arm of an experiment a visitor enters: GrowthBook's hash v2 and bucket ranges, so that any GrowthBook SDK
given the same seed, weights and coverage puts the same visitor in the same arm. Pure.

    bucket = (fnv1a32(str(fnv1a32(seed + visitor_id))) % 10000) / 10000

Arm i takes [cumulative weight before it, that + coverage * weight_i); a bucket in no range (beyond the coverage)
does not enter. Of those who enter, the share `holdout` is held out by a second hash of the same kind, with the
seed `seed + ":holdout"`: they see the default variant and are measured apart (docs/experiments.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
HOLDOUT_SALT = ":holdout"


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over UTF-16 code units, as GrowthBook's JavaScript computes it (charCodeAt)."""
    value = FNV_OFFSET
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        value ^= data[i] | (data[i + 1] << 8)
        value = (value * FNV_PRIME) & 0xFFFFFFFF
    return value


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook's hash version 2: a number in [0, 1) with four decimals."""
    return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


def equal_weights(arms: int) -> list[float]:
    """GrowthBook's getEqualWeights: 1/n each, nothing for no arms."""
    return [1 / arms] * arms if arms > 0 else []


def bucket_ranges(weights: Sequence[float], coverage: float, *, arms: int | None = None) -> list[tuple[float, float]]:
    """GrowthBook's getBucketRanges: arm i covers [start_i, start_i + coverage * w_i), start_i = sum of earlier
    weights. As GrowthBook does, the coverage is clamped to [0, 1], and weights that do not sum to 1 (within 0.01)
    or whose count differs from `arms` (when given) fall back to equal weights, so a bad row cannot skew traffic."""
    count = len(weights) if arms is None else arms
    coverage = min(max(coverage, 0.0), 1.0)
    if len(weights) != count or not 0.99 <= sum(weights) <= 1.01:
        weights = equal_weights(count)
    ranges, cumulative = [], 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_arm(bucket: float, ranges: Sequence[tuple[float, float]]) -> int | None:
    """The index of the range the bucket falls in (GrowthBook's chooseVariation), None outside them all."""
    for index, (start, end) in enumerate(ranges):
        if start <= bucket < end:
            return index
    return None


@dataclass(frozen=True)
class Assignment:
    """Where a visitor lands: `arm` (an index into the phase's arms) when they enter, `holdout` when held out."""

    arm: int | None
    holdout: bool = False

    @property
    def entered(self) -> bool:
        return self.arm is not None or self.holdout


NOT_ENTERED = Assignment(arm=None)


def assign(
    *, seed: str, visitor_id: str, ranges: Sequence[tuple[float, float]], holdout: float
) -> Assignment:
    """The visitor's arm for a phase with these `bucket_ranges`; deterministic in (seed, visitor_id)."""
    arm = choose_arm(hash_v2(seed, visitor_id), ranges)
    if arm is None:
        return NOT_ENTERED
    if holdout > 0 and hash_v2(seed + HOLDOUT_SALT, visitor_id) < holdout:
        return Assignment(arm=None, holdout=True)
    return Assignment(arm=arm)
