"""Peeking: A/A experiments looked at 20 times. The always-valid (mSPRT) p-value keeps the false positive rate at
alpha however often one looks; the fixed-horizon z-test looked at the same way does not. With a real effect the
sequential test still rejects most of the time. Seeded, so the rates below are the same on every run."""

from __future__ import annotations

import numpy as np

from campaigns.statistics import ALPHA, compare_means, compare_proportions, two_proportion_p_value, welch_p_value

EXPERIMENTS = 500
LOOKS = 20
VISITORS_PER_LOOK = 250  # per arm: 5,000 per arm (10,000 in all) at the last look


def _cumulative_conversions(rng: np.random.Generator, rate: float) -> np.ndarray:
    return rng.binomial(VISITORS_PER_LOOK, rate, size=(EXPERIMENTS, LOOKS)).cumsum(axis=1)


def _rejection_rates(rate_c: float, rate_t: float, seed: int) -> tuple[float, float]:
    """(sequential, fixed horizon): the share of experiments rejected at ANY of the looks, on cumulative data."""
    rng = np.random.default_rng(seed)
    conversions_c, conversions_t = _cumulative_conversions(rng, rate_c), _cumulative_conversions(rng, rate_t)
    sequential_rejections = fixed_rejections = 0
    for experiment in range(EXPERIMENTS):
        sequential_rejected = fixed_rejected = False
        for look in range(LOOKS):
            n = VISITORS_PER_LOOK * (look + 1)
            x_c, x_t = int(conversions_c[experiment, look]), int(conversions_t[experiment, look])
            sequential_p = compare_proportions((x_c, n), (x_t, n), sequential=True)["p_value"]
            fixed_p = two_proportion_p_value(x_c, n, x_t, n)
            sequential_rejected |= sequential_p is not None and sequential_p < ALPHA
            fixed_rejected |= fixed_p is not None and fixed_p < ALPHA
        sequential_rejections += sequential_rejected
        fixed_rejections += fixed_rejected
    return sequential_rejections / EXPERIMENTS, fixed_rejections / EXPERIMENTS


def test_msprt_keeps_false_positives_at_alpha_under_peeking_and_the_z_test_does_not() -> None:
    sequential, fixed = _rejection_rates(0.10, 0.10, seed=20240614)
    print(f"A/A, {LOOKS} looks: sequential rejects {sequential:.1%}, fixed-horizon z-test {fixed:.1%}")
    # alpha + about 1.5 binomial sd (sqrt(0.05 * 0.95 / 500) = 1 %): the bound holds with room; seen here: 1.4 %.
    assert sequential <= 0.06
    # Twenty looks at a fixed-horizon test reject far more often than alpha (seen here: 25.8 %).
    assert fixed > 0.10
    assert fixed > 3 * sequential


def test_msprt_still_finds_a_real_effect() -> None:
    sequential, fixed = _rejection_rates(0.10, 0.13, seed=7)
    print(f"10 % vs 13 %, {LOOKS} looks: sequential rejects {sequential:.1%}, fixed-horizon {fixed:.1%}")
    assert sequential > 0.80  # seen here: 97.6 %


def test_msprt_on_means_keeps_false_positives_at_alpha_under_peeking() -> None:
    """Revenue-like data (90 % zeros, exponential amounts) through compare_means: the CLT-based mixture holds too."""
    experiments, looks, per_look = 200, 20, 250
    rng = np.random.default_rng(99)

    def cumulative_sums() -> tuple[np.ndarray, np.ndarray]:
        amounts = rng.exponential(40.0, size=(experiments, looks, per_look)) * (rng.random((experiments, looks,
                                                                                              per_look)) < 0.1)
        return amounts.sum(axis=2).cumsum(axis=1), (amounts**2).sum(axis=2).cumsum(axis=1)

    (sum_c, sq_c), (sum_t, sq_t) = cumulative_sums(), cumulative_sums()
    sequential_rejections = fixed_rejections = 0
    for experiment in range(experiments):
        sequential_rejected = fixed_rejected = False
        for look in range(looks):
            n = per_look * (look + 1)
            control = (n, float(sum_c[experiment, look]), float(sq_c[experiment, look]))
            treatment = (n, float(sum_t[experiment, look]), float(sq_t[experiment, look]))
            p_value = compare_means(control, treatment, sequential=True)["p_value"]
            sequential_rejected |= p_value is not None and p_value < ALPHA
            mean_c, mean_t = control[1] / n, treatment[1] / n
            var_c = (control[2] - control[1] * mean_c) / (n - 1)
            var_t = (treatment[2] - treatment[1] * mean_t) / (n - 1)
            fixed_p = welch_p_value(mean_c, var_c, n, mean_t, var_t, n)
            fixed_rejected |= fixed_p is not None and fixed_p < ALPHA
        sequential_rejections += sequential_rejected
        fixed_rejections += fixed_rejected
    sequential, fixed = sequential_rejections / experiments, fixed_rejections / experiments
    print(f"A/A means, {looks} looks: sequential rejects {sequential:.1%}, fixed-horizon Welch {fixed:.1%}")
    assert sequential <= 0.06
    assert fixed > 0.10
