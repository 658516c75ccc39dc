"""Bandit allocation: Thompson sampling over Beta(1 + conversions, 1 + visitors - conversions) posteriors. Pure.

- chance_to_be_best: the share of `draws` Monte Carlo draws (one sample per arm) in which an arm's sample is largest.
- Thompson weights: w_i = chance_to_be_best_i.
- Top-two Thompson sampling (Russo 2016), beta = 1/2: with probability beta play the leader, otherwise a challenger
  drawn again until it differs from the leader: w_i = beta p_i + (1 - beta) sum_{j != i} p_j p_i / (1 - p_j). When an
  arm won every draw (p_j = 1, so p_i / (1 - p_j) is 0 / 0), its challengers are weighted by how often each is best
  among the other arms in the same draws. The leader keeps about half the traffic, so the runners-up stay measured.
- Burn-in: equal weights until the arms have burn_in_per_arm visitors each on average (total >= burn_in * arms).
- Floor: no arm below `floor`; arms that would fall below are pinned to it and the rest share what is left in
  proportion to their weights, repeated until no more arms fall below (a floor of 1/arms or more gives equal weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOP_TWO_BETA = 0.5
DEFAULT_FLOOR = 0.01
DEFAULT_BURN_IN_PER_ARM = 100
DEFAULT_DRAWS = 10_000


@dataclass(frozen=True)
class BanditUpdate:
    """New weights per arm (in arm order, summing to 1), each arm's chance to be best (None during burn-in) and
    which rule produced them: "burn_in", "thompson" or "top_two"."""

    weights: tuple[float, ...]
    chance_to_be_best: tuple[float, ...] | None
    note: str


def thompson_weights(
    arms: Sequence[tuple[int, int]],
    *,
    top_two: bool = False,
    floor: float = DEFAULT_FLOOR,
    burn_in_per_arm: int = DEFAULT_BURN_IN_PER_ARM,
    draws: int = DEFAULT_DRAWS,
    rng: np.random.Generator | None = None,
) -> BanditUpdate:
    """Weights for the next period from (visitors, conversions) per arm. Conversions are clipped to [0, visitors]."""
    counts = [(max(0, int(visitors)), int(conversions)) for visitors, conversions in arms]
    counts = [(visitors, min(max(0, conversions), visitors)) for visitors, conversions in counts]
    if not counts:
        return BanditUpdate(weights=(), chance_to_be_best=None, note="burn_in")
    if sum(visitors for visitors, _ in counts) < burn_in_per_arm * len(counts):
        return BanditUpdate(weights=equal_weights(len(counts)), chance_to_be_best=None, note="burn_in")
    samples = _posterior_samples(counts, max(1, int(draws)), rng or np.random.default_rng())
    chance = _chance_to_be_best(samples)
    raw = _top_two(chance, samples) if top_two else chance
    return BanditUpdate(
        weights=apply_floor(raw, floor),
        chance_to_be_best=tuple(float(p) for p in chance),
        note="top_two" if top_two else "thompson",
    )


def equal_weights(count: int) -> tuple[float, ...]:
    """1 / count each, the last one absorbing rounding so the sum is 1."""
    if count <= 0:
        return ()
    share = 1.0 / count
    return (*([share] * (count - 1)), 1.0 - share * (count - 1))


def _posterior_samples(counts: Sequence[tuple[int, int]], draws: int, rng: np.random.Generator) -> np.ndarray:
    alpha = np.array([1 + conversions for _, conversions in counts], dtype=np.float64)
    beta = np.array([1 + visitors - conversions for visitors, conversions in counts], dtype=np.float64)
    return rng.beta(alpha, beta, size=(draws, len(counts)))


def _chance_to_be_best(samples: np.ndarray) -> np.ndarray:
    winners = np.argmax(samples, axis=1)
    return np.bincount(winners, minlength=samples.shape[1]) / samples.shape[0]


def _top_two(chance: np.ndarray, samples: np.ndarray, beta: float = TOP_TWO_BETA) -> np.ndarray:
    """w_i = beta p_i + (1 - beta) sum_{j != i} p_j q_ij, q_ij = P(i is the challenger | j leads) = p_i / (1 - p_j);
    for a leader that won every draw, q_ij is how often i is best among the others in the same draws."""
    weights = beta * chance
    for leader, p_leader in enumerate(chance):
        if p_leader == 0:
            continue
        if p_leader < 1:
            challenger = chance / (1.0 - p_leader)
            challenger[leader] = 0.0
        else:
            without_leader = samples.copy()
            without_leader[:, leader] = -np.inf
            challenger = _chance_to_be_best(without_leader)
        weights = weights + (1.0 - beta) * p_leader * challenger
    return weights


def apply_floor(weights: Sequence[float], floor: float) -> tuple[float, ...]:
    """Weights with none below `floor`, summing to 1: arms under the floor are pinned to it, the others share the
    rest in proportion, until stable. The largest weight absorbs the last rounding."""
    count = len(weights)
    if count == 0:
        return ()
    floor = max(0.0, float(floor))
    if floor * count >= 1.0:
        return equal_weights(count)
    raw = [max(0.0, float(w)) if math.isfinite(float(w)) else 0.0 for w in weights]
    pinned: set[int] = set()
    result = list(raw)
    while True:
        free = [i for i in range(count) if i not in pinned]
        left = 1.0 - floor * len(pinned)
        free_total = math.fsum(raw[i] for i in free)
        for i in free:
            result[i] = left * raw[i] / free_total if free_total > 0 else left / len(free)
        for i in pinned:
            result[i] = floor
        below = {i for i in free if result[i] < floor}
        if not below:
            break
        pinned |= below
    largest = max(range(count), key=result.__getitem__)
    result[largest] = 1.0 - math.fsum(result[i] for i in range(count) if i != largest)
    return tuple(result)
