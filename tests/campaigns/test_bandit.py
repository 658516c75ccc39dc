"""Thompson sampling allocation: burn-in, floor, top-two, and a seeded simulation in which one arm is clearly better.

The simulation: three arms converting at 4 %, 4 % and 8 %; every hour 200 visitors are split by the weights in
force (a multinomial draw), their conversions drawn, and the weights updated from the cumulative counts, with the
defaults (burn-in 100 visitors per arm, floor 1 %, 10,000 draws). Ten seeded runs of 48 updates each.
Seen with these seeds (plain Thompson): the best arm holds more than half the traffic for good from update 2 in the
median run and from update 31 in the slowest (a run that first favoured a 4 % arm); more than 90 % by update 33 in
every run. Top-two leads with the best arm from update 13 at the latest (the slow run: 7), holding it near half the
traffic and giving the others about half, where plain Thompson gives them about 7 %.
"""

from __future__ import annotations

import math
from statistics import median

import numpy as np
import pytest

from campaigns.bandit import BanditUpdate, apply_floor, equal_weights, thompson_weights
from campaigns.statistics import beta_chance_to_beat

RATES = (0.04, 0.04, 0.08)
BEST = 2
VISITORS_PER_UPDATE = 200
UPDATES = 48
SEEDS = range(10)
FLOOR = 0.01


def _simulate(*, top_two: bool, seed: int) -> tuple[list[BanditUpdate], np.ndarray]:
    """Every update's result and the visitors each arm got in all."""
    rng = np.random.default_rng(seed)
    visitors, conversions = np.zeros(len(RATES), dtype=int), np.zeros(len(RATES), dtype=int)
    weights: tuple[float, ...] = equal_weights(len(RATES))
    updates = []
    for _ in range(UPDATES):
        batch = rng.multinomial(VISITORS_PER_UPDATE, weights)
        visitors += batch
        conversions += rng.binomial(batch, RATES)
        update = thompson_weights(list(zip(visitors.tolist(), conversions.tolist(), strict=True)), top_two=top_two,
                                  floor=FLOOR, rng=rng)
        updates.append(update)
        weights = update.weights
    return updates, visitors


def _holds_from(best_weights: list[float], threshold: float) -> int | None:
    """The first update (1-based) from which the best arm's weight stays above the threshold to the end."""
    for index in range(len(best_weights)):
        if all(w > threshold for w in best_weights[index:]):
            return index + 1
    return None


@pytest.fixture(scope="module")
def thompson_runs() -> list[tuple[list[BanditUpdate], np.ndarray]]:
    return [_simulate(top_two=False, seed=seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def top_two_runs() -> list[tuple[list[BanditUpdate], np.ndarray]]:
    return [_simulate(top_two=True, seed=seed) for seed in SEEDS]


def test_thompson_moves_traffic_to_the_best_arm(thompson_runs) -> None:
    over_half = [_holds_from([u.weights[BEST] for u in updates], 0.5) for updates, _ in thompson_runs]
    over_ninety = [_holds_from([u.weights[BEST] for u in updates], 0.9) for updates, _ in thompson_runs]
    print(f"updates until the best arm holds > 50 %: {over_half}; > 90 %: {over_ninety}")
    assert all(h is not None and h <= 40 for h in over_half)
    assert median(over_half) <= 6
    assert all(h is not None and h <= 44 for h in over_ninety)
    for updates, _ in thompson_runs:
        assert updates[-1].weights[BEST] >= 0.9
        assert updates[-1].chance_to_be_best[BEST] >= 0.95
    # Of all visitors the best arm got over 90 % in the median run (seen: 93 %), and more than an equal third even
    # in the run that favoured a 4 % arm for 30 updates (seen: 41 %).
    shares = [visitors[BEST] / visitors.sum() for _, visitors in thompson_runs]
    assert median(shares) > 0.9
    assert min(shares) > 1 / 3


def test_top_two_converges_and_explores_more(thompson_runs, top_two_runs) -> None:
    for top_two, top_two_visitors in top_two_runs:
        assert all(u.note == "top_two" for u in top_two[1:])
        # From update 16 on the best arm leads (seen: from update 13 at the latest, 5 in the median run): it keeps
        # about half the traffic (beta = 1/2), and no other arm gets more than the challenger's half.
        for update in top_two[15:]:
            assert update.chance_to_be_best[BEST] > 0.9
            assert 0.45 <= update.weights[BEST] <= 0.75
            assert all(w <= 0.55 for arm, w in enumerate(update.weights) if arm != BEST)
        assert 1 - top_two_visitors[BEST] / top_two_visitors.sum() > 0.3
    # The other arms get much more of the traffic than under plain Thompson (seen: about 51 % against 7 %).
    others = [1 - visitors[BEST] / visitors.sum() for _, visitors in top_two_runs]
    plain_others = [1 - visitors[BEST] / visitors.sum() for _, visitors in thompson_runs]
    assert median(others) > 3 * median(plain_others)


def test_simulated_weights_respect_the_floor_and_sum_to_one(thompson_runs, top_two_runs) -> None:
    for updates, _ in [*thompson_runs, *top_two_runs]:
        for update in updates:
            assert min(update.weights) >= FLOOR - 1e-12
            assert math.fsum(update.weights) == pytest.approx(1.0, abs=1e-12)
            assert len(update.weights) == len(RATES)


def test_first_update_is_burn_in(thompson_runs) -> None:
    # 200 visitors < 100 per arm * 3 arms: equal weights, no chances yet; 400 after the second batch: Thompson.
    for updates, _ in thompson_runs:
        assert updates[0] == BanditUpdate(weights=equal_weights(3), chance_to_be_best=None, note="burn_in")
        assert updates[1].note == "thompson"


# --- Unit behaviour -----------------------------------------------------------------------------------------------


def test_burn_in_gives_equal_weights_until_enough_visitors() -> None:
    below = thompson_weights([(100, 1), (99, 50), (100, 2)], burn_in_per_arm=100, rng=np.random.default_rng(1))
    assert below == BanditUpdate(weights=equal_weights(3), chance_to_be_best=None, note="burn_in")
    at = thompson_weights([(100, 1), (100, 50), (100, 2)], burn_in_per_arm=100, rng=np.random.default_rng(1))
    assert at.note == "thompson" and at.weights[1] > 0.9
    assert math.fsum(equal_weights(3)) == 1.0


def test_chance_to_be_best_agrees_with_the_exact_two_arm_chance() -> None:
    draws = 200_000
    update = thompson_weights([(400, 20), (380, 27)], floor=0.0, draws=draws, rng=np.random.default_rng(3))
    exact = beta_chance_to_beat(20, 400, 27, 380)
    tolerance = 4 * math.sqrt(exact * (1 - exact) / draws)  # 4 Monte Carlo standard errors
    assert update.chance_to_be_best[1] == pytest.approx(exact, abs=tolerance)
    assert update.weights == pytest.approx(update.chance_to_be_best)


def test_top_two_weights_follow_the_formula() -> None:
    update = thompson_weights([(300, 12), (300, 15), (300, 18), (300, 14)], top_two=True, floor=0.0,
                              rng=np.random.default_rng(4))
    p = update.chance_to_be_best
    assert all(0 < value < 1 for value in p)
    for i in range(len(p)):
        expected = 0.5 * p[i] + 0.5 * sum(p[j] * p[i] / (1 - p[j]) for j in range(len(p)) if j != i)
        assert update.weights[i] == pytest.approx(expected, rel=1e-9)
    assert math.fsum(update.weights) == pytest.approx(1.0, abs=1e-12)


def test_top_two_with_a_certain_leader_shares_the_challenger_half() -> None:
    update = thompson_weights([(2000, 20), (2000, 200), (2000, 60)], top_two=True, floor=0.0,
                              rng=np.random.default_rng(5))
    assert update.chance_to_be_best == (0.0, 1.0, 0.0)
    assert update.weights[1] == pytest.approx(0.5)
    assert update.weights[2] > update.weights[0]  # the stronger runner-up is the likelier challenger
    assert math.fsum(update.weights) == pytest.approx(1.0, abs=1e-12)


def test_seeded_updates_are_reproducible() -> None:
    arms = [(500, 20), (500, 24), (500, 22)]
    first = thompson_weights(arms, rng=np.random.default_rng(42))
    again = thompson_weights(arms, rng=np.random.default_rng(42))
    assert first == again


@pytest.mark.parametrize(
    ("weights", "floor", "expected"),
    [
        ([1.0, 0.0, 0.0], 0.01, [0.98, 0.01, 0.01]),
        ([0.5, 0.5], 0.01, [0.5, 0.5]),
        ([0.6, 0.395, 0.005], 0.01, [0.6 * 0.99 / 0.995, 0.395 * 0.99 / 0.995, 0.01]),
        ([0.9, 0.1, 0.0, 0.0], 0.3, [0.25, 0.25, 0.25, 0.25]),  # a floor above 1/arms leaves equal weights
        ([0.2, 0.3], 0.0, [0.4, 0.6]),  # renormalised
    ],
)
def test_apply_floor(weights: list[float], floor: float, expected: list[float]) -> None:
    result = apply_floor(weights, floor)
    assert list(result) == pytest.approx(expected, abs=1e-12)
    assert math.fsum(result) == pytest.approx(1.0, abs=1e-15)
    assert min(result) >= min(floor, 1 / len(weights)) - 1e-15


def test_apply_floor_cascades_until_stable() -> None:
    # First pass: 0.004 pins at 0.05; the rest scaled by 0.95 / 0.996 puts 0.045 * 0.95 / 0.996 = 0.0429 below it,
    # so that arm pins on the second pass, and the leaders share 0.9.
    result = apply_floor([0.651, 0.3, 0.045, 0.004], 0.05)
    assert result[2:] == pytest.approx((0.05, 0.05))
    assert result[0] == pytest.approx(0.9 * 0.651 / 0.951) and result[1] == pytest.approx(0.9 * 0.3 / 0.951)
    assert math.fsum(result) == pytest.approx(1.0, abs=1e-15)


def test_degenerate_inputs_do_not_raise() -> None:
    assert thompson_weights([]) == BanditUpdate(weights=(), chance_to_be_best=None, note="burn_in")
    single = thompson_weights([(500, 10)], rng=np.random.default_rng(0))
    assert single.weights == (1.0,) and single.chance_to_be_best == (1.0,)
    clipped = thompson_weights([(200, 500), (200, -3)], rng=np.random.default_rng(0))  # conversions clipped
    assert clipped.weights == pytest.approx((0.99, 0.01))
