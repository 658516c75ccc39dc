"""campaigns.statistics against scipy and statsmodels on fixed data: tiny samples, zero and all conversions, uneven
arms, large counts. The module computes its own special functions; scipy and statsmodels appear here only."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from campaigns import statistics as S

# (x_c, n_c, x_t, n_t): tiny, zero, all, uneven, large.
PROPORTION_CASES = [
    (0, 1, 0, 1),
    (1, 1, 0, 1),
    (1, 1, 1, 1),
    (0, 10, 0, 10),
    (10, 10, 10, 10),
    (0, 10, 3, 10),
    (3, 10, 0, 10),
    (10, 10, 7, 10),
    (1, 2, 2, 3),
    (5, 20, 9, 25),
    (2, 7, 40, 90),
    (30, 1000, 45, 1000),
    (1, 1000, 9, 1000),
    (999, 1000, 1000, 1000),
    (100, 5000, 130, 4000),
    (480, 10_000, 520, 10_000),
    (500, 600, 30, 40),
    (20, 1000, 60, 1000),
    (50_000, 1_000_000, 50_500, 1_000_000),
]
PROPORTION_IDS = ["{}/{}-vs-{}/{}".format(*case) for case in PROPORTION_CASES]


def _nan_to_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# --- Special functions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1e-300, 1e-12, 1e-6, 0.001, 0.02, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.975, 0.999, 1 - 1e-12])
def test_normal_ppf_matches_scipy(p: float) -> None:
    assert S.normal_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("df", [1, 1.5, 2, 3.7, 10, 30, 250, 9_999, 10_001, 1e5, 1e6, 1e9])
def test_student_t_tail_and_quantile_match_scipy(df: float) -> None:
    for t in [-30, -4, -1.5, -0.01, 0.001, 0.5, 1.7, 2, 3, 5, 8, 15, 40]:
        assert S.student_t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-12)
        assert S.student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-12)
    for p in [1e-12, 1e-6, 0.01, 0.025, 0.3, 0.6, 0.975, 0.995, 0.9999]:
        assert S.student_t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-12)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (1, 1), (2, 3), (0.5, 50), (50, 0.5), (12, 15), (1e3, 5), (1e4, 1e4)])
def test_regularized_beta_matches_scipy(a: float, b: float) -> None:
    for x in [1e-9, 0.001, 0.2, 0.5, 0.8, 0.999, 1 - 1e-9]:
        expected = special.betainc(a, b, x)
        assert S.regularized_beta(a, b, x) == pytest.approx(expected, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize(("a", "b"), [(3, 10), (3, 1_000_000), (7, 2_000_000), (20, 30)])
def test_log_beta_is_exact_where_beta_has_a_closed_form(a: int, b: int) -> None:
    # B(a, b) = (a - 1)! (b - 1)! / (a + b - 1)!  ->  ln B = ln (a - 1)! - sum_{k=b}^{a+b-1} ln k
    exact = math.log(math.factorial(a - 1)) - math.fsum(math.log(k) for k in range(b, a + b))
    assert S.log_beta(a, b) == pytest.approx(exact, rel=1e-14)
    assert S.log_beta(b, a) == S.log_beta(a, b)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 49])
def test_chi2_sf_matches_scipy(df: int) -> None:
    for x in [0.0, 1e-6, 0.1, 1, df, 2 * df + 3, 50, 300]:
        assert S.chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-12, abs=1e-300)


# --- Descriptive --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "n"), [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (1, 2), (45, 1000), (50_000, 10**6)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_statsmodels(x: int, n: int, confidence: float) -> None:
    low, high = proportion_confint(x, n, alpha=1 - confidence, method="wilson")
    assert S.wilson_interval(x, n, confidence=confidence) == pytest.approx((low, high), rel=1e-12, abs=1e-15)


def test_wilson_interval_undefined_without_trials() -> None:
    assert S.wilson_interval(0, 0) is None
    assert S.wilson_interval(3, 2) is None
    assert S.wilson_interval(1, 2, confidence=1.0) is None


@pytest.mark.parametrize(
    "values",
    [[4.2], [1.0, 3.0], [5.0] * 7, [-2.5, 0.0, 3.5, 10.25, 7.0], list(np.random.default_rng(3).exponential(40, 5000))],
    ids=["one", "two", "constant", "mixed-sign", "exponential-5000"],
)
def test_mean_and_variance_match_numpy(values: list[float]) -> None:
    data = np.array(values)
    mean, variance = S.mean_and_variance(len(data), float(data.sum()), float((data**2).sum()))
    assert mean == pytest.approx(data.mean(), rel=1e-12)
    expected_variance = data.var(ddof=1) if len(data) > 1 else 0.0
    assert variance == pytest.approx(expected_variance, rel=1e-9, abs=1e-12)


def test_mean_and_variance_undefined_without_visitors() -> None:
    assert S.mean_and_variance(0, 0.0, 0.0) is None
    assert S.mean_and_variance(3, float("nan"), 1.0) is None


# --- Fixed-horizon tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_two_proportion_p_value_matches_statsmodels(case: tuple[int, int, int, int]) -> None:
    x_c, n_c, x_t, n_t = case
    with np.errstate(all="ignore"):
        _, expected = proportions_ztest([x_t, x_c], [n_t, n_c])
    ours = S.two_proportion_p_value(x_c, n_c, x_t, n_t)
    if _nan_to_none(expected) is None:
        assert ours is None  # nobody or everybody converted: no variance under H0
    else:
        assert ours == pytest.approx(expected, rel=1e-10, abs=1e-300)


def _samples(seed: int, n: int, mean: float, sd: float) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


# (control data, treatment data): tiny, uneven, unequal variance, skewed, large, one constant arm.
MEAN_CASES = [
    (np.array([1.0, 2.0]), np.array([2.0, 4.0, 9.0])),
    (_samples(1, 5, 10, 2), _samples(2, 50, 11, 6)),
    (_samples(3, 30, 0.5, 0.1), _samples(4, 12, 0.4, 0.3)),
    (np.random.default_rng(5).exponential(30, 400), np.random.default_rng(6).exponential(36, 380)),
    (_samples(7, 20_000, 100, 15), _samples(8, 25_000, 100.4, 16)),
    (np.full(10, 3.0), _samples(9, 10, 3.5, 1)),
    (_samples(10, 3, -4, 1), _samples(11, 4, -5, 1)),
]
MEAN_IDS = ["tiny", "uneven", "unequal-variance", "exponential", "large", "constant-control", "negative"]


def _summary(data: np.ndarray) -> tuple[float, float, int]:
    return float(data.mean()), float(data.var(ddof=1)), len(data)


@pytest.mark.parametrize(("control", "treatment"), MEAN_CASES, ids=MEAN_IDS)
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on the constant arm
def test_welch_p_value_and_uplift_interval_match_scipy(control: np.ndarray, treatment: np.ndarray) -> None:
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    mean_c, var_c, n_c = _summary(control)
    mean_t, var_t, n_t = _summary(treatment)
    assert S.welch_p_value(mean_c, var_c, n_c, mean_t, var_t, n_t) == pytest.approx(reference.pvalue, rel=1e-9)
    summary = stats.ttest_ind_from_stats(mean_t, math.sqrt(var_t), n_t, mean_c, math.sqrt(var_c), n_c, equal_var=False)
    assert S.welch_p_value(mean_c, var_c, n_c, mean_t, var_t, n_t) == pytest.approx(summary.pvalue, rel=1e-9)
    for confidence in (0.9, 0.95):
        low, high = reference.confidence_interval(confidence)
        uplift, interval = S.uplift_means(mean_c, var_c, n_c, mean_t, var_t, n_t, confidence=confidence)
        assert uplift == pytest.approx(mean_t / mean_c - 1, rel=1e-12)
        assert interval == pytest.approx(tuple(sorted((low / mean_c, high / mean_c))), rel=1e-9)


def test_welch_undefined_for_single_visitors_or_no_variance() -> None:
    assert S.welch_p_value(1.0, 0.0, 1, 2.0, 1.0, 10) is None
    assert S.welch_p_value(1.0, 0.0, 10, 2.0, 0.0, 10) is None
    uplift, interval = S.uplift_means(2.0, 0.0, 1, 3.0, 0.0, 1)
    assert uplift == pytest.approx(0.5) and interval is None
    assert S.uplift_means(0.0, 1.0, 10, 3.0, 1.0, 10) == (None, None)
    assert S.uplift_means(1.0, 1.0, 0, 3.0, 1.0, 10) == (None, None)


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_uplift_proportions_matches_statsmodels_katz_log(case: tuple[int, int, int, int], confidence: float) -> None:
    x_c, n_c, x_t, n_t = case
    uplift, interval = S.uplift_proportions(x_c, n_c, x_t, n_t, confidence=confidence)
    if x_c == 0:
        assert (uplift, interval) == (None, None)
        return
    assert uplift == pytest.approx((x_t / n_t) / (x_c / n_c) - 1, rel=1e-12, abs=1e-15)
    if x_t == 0 or (x_t == n_t and x_c == n_c):
        assert interval is None  # log 0 (statsmodels divides by zero), or a zero Katz variance: everybody converted
        return
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, compare="ratio", method="log", alpha=1 - confidence)
    assert interval == pytest.approx((low - 1, high - 1), rel=1e-10)


# --- Bayesian -----------------------------------------------------------------------------------------------------


def _posteriors(x_c: int, n_c: int, x_t: int, n_t: int):
    return stats.beta(1 + x_c, 1 + n_c - x_c), stats.beta(1 + x_t, 1 + n_t - x_t)


def _support(*distributions) -> tuple[float, float, list[float]]:
    low = min(d.ppf(1e-14) for d in distributions)
    high = max(d.isf(1e-14) for d in distributions)
    return low, high, sorted(float(d.mean()) for d in distributions)


def _quad(function, low: float, high: float, points: list[float]) -> float:
    value, _ = integrate.quad(function, low, high, points=points, epsabs=1e-15, epsrel=1e-12, limit=500)
    return value


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_beta_chance_to_beat_matches_numerical_integration(case: tuple[int, int, int, int]) -> None:
    control, treatment = _posteriors(*case)
    low, high, points = _support(control, treatment)
    # P(p_t > p_c) = integral of f_t(x) F_c(x) dx
    expected = _quad(lambda x: treatment.pdf(x) * control.cdf(x), low, high, points)
    assert S.beta_chance_to_beat(*case) == pytest.approx(expected, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_beta_chance_to_beat_is_complementary(case: tuple[int, int, int, int]) -> None:
    x_c, n_c, x_t, n_t = case
    forward, backward = S.beta_chance_to_beat(x_c, n_c, x_t, n_t), S.beta_chance_to_beat(x_t, n_t, x_c, n_c)
    # The two directions sum different series; at a million visitors lnB of arguments near 1e6 limits both to ~1e-11.
    assert forward + backward == pytest.approx(1.0, abs=1e-13 if n_c + n_t < 2000 else 1e-10)


def test_beta_chance_to_beat_keeps_precision_in_the_far_tail() -> None:
    control, treatment = _posteriors(200, 1000, 100, 1000)
    low, high, points = _support(control, treatment)
    expected = _quad(lambda x: treatment.pdf(x) * control.cdf(x), low, high, points)
    assert expected < 1e-9
    assert S.beta_chance_to_beat(200, 1000, 100, 1000) == pytest.approx(expected, rel=1e-8)
    # Far beyond what 1 - P could express: the sum has no subtraction.
    assert 0 < S.beta_chance_to_beat(400, 1000, 100, 1000) < 1e-50


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_beta_expected_loss_matches_numerical_integration(case: tuple[int, int, int, int]) -> None:
    x_c, n_c, x_t, n_t = case
    control, treatment = _posteriors(*case)
    shifted = stats.beta(2 + x_t, 1 + n_t - x_t)  # E[p_t; p_t < x] = mean_t * F_{Beta(a_t + 1, b_t)}(x)
    low, high, points = _support(control, treatment)
    # E[max(p_c - p_t, 0)] = integral of f_c(x) (x F_t(x) - E[p_t; p_t < x]) dx
    expected = _quad(lambda x: control.pdf(x) * (x * treatment.cdf(x) - treatment.mean() * shifted.cdf(x)),
                     low, high, points)
    assert S.beta_expected_loss(*case) == pytest.approx(expected, rel=1e-7, abs=1e-14)


@pytest.mark.parametrize("case", [(0, 1, 0, 1), (3, 10, 5, 12), (1, 2, 0, 7)])
def test_beta_expected_loss_matches_double_integral(case: tuple[int, int, int, int]) -> None:
    control, treatment = _posteriors(*case)
    # integral over p_c of f_c(p_c) * integral over p_t < p_c of (p_c - p_t) f_t(p_t)
    expected, _ = integrate.dblquad(lambda p_t, p_c: (p_c - p_t) * control.pdf(p_c) * treatment.pdf(p_t),
                                    0, 1, lambda p_c: 0, lambda p_c: p_c, epsabs=1e-12, epsrel=1e-10)
    assert S.beta_expected_loss(*case) == pytest.approx(expected, rel=1e-8)


def test_beta_statistics_undefined_without_visitors() -> None:
    assert S.beta_chance_to_beat(0, 0, 1, 10) is None
    assert S.beta_expected_loss(1, 10, 0, 0) is None
    assert S.beta_chance_to_beat(11, 10, 1, 10) is None


@pytest.mark.parametrize(("control", "treatment"), MEAN_CASES, ids=MEAN_IDS)
def test_normal_chance_and_loss_match_scipy(control: np.ndarray, treatment: np.ndarray) -> None:
    mean_c, var_c, n_c = _summary(control)
    mean_t, var_t, n_t = _summary(treatment)
    spread = math.sqrt(var_c / n_c + var_t / n_t)
    assert S.normal_chance_to_beat(mean_c, var_c, n_c, mean_t, var_t, n_t) == pytest.approx(
        stats.norm.sf(0, loc=mean_t - mean_c, scale=spread), rel=1e-12, abs=1e-300)
    loss = stats.norm(loc=mean_c - mean_t, scale=spread)  # mu_c - mu_t
    expected, _ = integrate.quad(lambda d: d * loss.pdf(d), 0, np.inf, epsabs=1e-14, epsrel=1e-11)
    assert S.normal_expected_loss(mean_c, var_c, n_c, mean_t, var_t, n_t) == pytest.approx(expected, rel=1e-8,
                                                                                           abs=1e-13)


# --- SRM and multiple comparisons ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        ([500, 500], [500, 500]),
        ([480, 520], [500, 500]),
        ([1000, 1200, 800], [1000, 1000, 1000]),
        ([100, 300], [100, 300]),
        ([130, 270], [100, 300]),
        ([5021, 4979], [0.5, 0.5]),  # shares are rescaled to the observed total
        ([3, 9], [6, 6]),
        ([40_000, 20_500, 19_500], [40_000, 20_000, 20_000]),
    ],
)
def test_srm_p_value_matches_scipy_chisquare(observed: list[int], expected: list[float]) -> None:
    scaled = np.array(expected, dtype=float) * sum(observed) / sum(expected)
    assert S.srm_p_value(observed, expected) == pytest.approx(stats.chisquare(observed, scaled).pvalue, rel=1e-10)


def test_srm_edge_cases() -> None:
    # An arm expected to get nobody that got visitors is a certain mismatch; one with neither is left out.
    assert S.srm_p_value([10, 5], [15, 0]) == 0.0
    assert S.srm_p_value([480, 520, 0], [500, 500, 0]) == pytest.approx(stats.chisquare([480, 520]).pvalue)
    assert S.srm_p_value([10], [10]) is None
    assert S.srm_p_value([0, 0], [0.5, 0.5]) is None
    assert S.srm_p_value([1, 2], [1]) is None
    assert S.srm_p_value([1, -2], [1, 1]) is None
    assert S.srm_p_value([100_000, 0], [50_000, 50_000]) == 0.0  # underflows to 0, not NaN


@pytest.mark.parametrize(
    "p_values",
    [
        [0.01, 0.04, 0.03, 0.2],
        [0.5],
        [0.001, 0.001, 0.04, 0.9, 0.02],
        [0.3, 0.6, 0.9],
        [1e-12, 0.049, 0.051],
    ],
)
def test_holm_adjust_matches_statsmodels(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="holm")[1]
    assert S.holm_adjust(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_holm_adjust_skips_missing_p_values() -> None:
    adjusted = S.holm_adjust([0.01, None, 0.04, None, 0.03])
    expected = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    assert adjusted[1] is None and adjusted[3] is None
    assert [adjusted[0], adjusted[2], adjusted[4]] == pytest.approx(list(expected))
    assert S.holm_adjust([]) == []
    assert S.holm_adjust([None, float("nan")]) == [None, None]


# --- Sequential ---------------------------------------------------------------------------------------------------


def _growthbook_sequential(difference: float, variance: float, n: int, alpha: float, tuning_n: float):
    """GrowthBook's SequentialTwoSidedTTest in its own (n, rho) parameterization: an independent form of the same
    test (Waudby-Smith et al. eq. 155 and 161)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_n
    s2 = variance * n
    halfwidth = math.sqrt(s2 * 2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))
    st2 = difference**2 * n / variance
    tr2p1 = n * rho2 + 1
    evalue = math.exp(rho2 * st2 / (2 * tr2p1)) / math.sqrt(tr2p1)
    return min(1 / evalue, 1.0), (difference - halfwidth, difference + halfwidth)


@pytest.mark.parametrize(
    ("difference", "variance", "n"),
    [(0.0, 1e-4, 2000), (0.01, 4e-5, 8000), (-0.02, 4e-5, 8000), (0.005, 1e-5, 40_000), (3.0, 2.0, 500),
     (0.1, 1e-3, 100)],
)
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_msprt_matches_growthbooks_sequential_test(difference: float, variance: float, n: int, alpha: float) -> None:
    tau2 = S.sequential_tau2(variance, n, alpha=alpha)
    expected_p, expected_interval = _growthbook_sequential(difference, variance, n, alpha, S.SEQUENTIAL_TUNING_N)
    assert S.msprt_p_value(difference, variance, tau2=tau2) == pytest.approx(expected_p, rel=1e-10)
    assert S.msprt_interval(difference, variance, tau2=tau2, alpha=alpha) == pytest.approx(expected_interval, rel=1e-10)


def test_msprt_interval_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    rng = np.random.default_rng(11)
    for _ in range(2000):
        variance = float(rng.uniform(1e-6, 1.0))
        difference = float(rng.normal(0, 4 * math.sqrt(variance)))
        tau2 = float(rng.uniform(1e-6, 10.0)) * variance
        p_value = S.msprt_p_value(difference, variance, tau2=tau2)
        low, high = S.msprt_interval(difference, variance, tau2=tau2, alpha=0.05)
        if abs(p_value - 0.05) > 1e-9:
            assert (p_value < 0.05) == (not low <= 0 <= high)


def test_msprt_p_value_is_conservative_and_never_overflows() -> None:
    assert S.msprt_p_value(0.0, 1.0, tau2=1.0) == 1.0
    assert S.msprt_p_value(1e6, 1e-6, tau2=1.0) == 0.0
    assert S.msprt_p_value(0.1, 0.0, tau2=1.0) is None
    assert S.msprt_interval(0.1, 1.0, tau2=0.0) is None
    # For the same data the always-valid p-value is never below the fixed-horizon z-test's.
    for z in (0.5, 1.96, 3.0, 5.0):
        assert S.msprt_p_value(z * 0.01, 1e-4, tau2=S.sequential_tau2(1e-4, 10_000)) > math.erfc(z / math.sqrt(2))


# --- Comparisons --------------------------------------------------------------------------------------------------

KEYS = {"uplift", "uplift_interval", "p_value", "chance_to_win", "expected_loss"}


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_compare_proportions_fixed_horizon_ties_the_pieces_together(case: tuple[int, int, int, int]) -> None:
    x_c, n_c, x_t, n_t = case
    result = S.compare_proportions((x_c, n_c), (x_t, n_t), sequential=False)
    assert set(result) == KEYS
    uplift, interval = S.uplift_proportions(x_c, n_c, x_t, n_t)
    assert result["uplift"] == uplift
    assert result["uplift_interval"] == (list(interval) if interval else None)
    assert result["p_value"] == S.two_proportion_p_value(x_c, n_c, x_t, n_t)
    assert result["chance_to_win"] == S.beta_chance_to_beat(x_c, n_c, x_t, n_t)
    assert result["expected_loss"] == S.beta_expected_loss(x_c, n_c, x_t, n_t)
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("case", PROPORTION_CASES, ids=PROPORTION_IDS)
def test_compare_proportions_sequential_uses_the_msprt_on_the_difference(case: tuple[int, int, int, int]) -> None:
    x_c, n_c, x_t, n_t = case
    result = S.compare_proportions((x_c, n_c), (x_t, n_t), sequential=True)
    p_c, p_t = x_c / n_c, x_t / n_t
    variance = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
    if variance == 0:
        assert result["p_value"] is None and result["uplift_interval"] is None
        return
    expected_p, (low, high) = _growthbook_sequential(p_t - p_c, variance, n_c + n_t, 0.05, 5000)
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-10)
    if p_c == 0:
        assert result["uplift_interval"] is None
    else:
        assert result["uplift_interval"] == pytest.approx([low / p_c, high / p_c], rel=1e-10)
    # The confidence sequence is always wider than the fixed-horizon Wald interval on the same difference.
    assert (high - low) / 2 > stats.norm.ppf(0.975) * math.sqrt(variance)
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(("control", "treatment"), MEAN_CASES, ids=MEAN_IDS)
@pytest.mark.parametrize("sequential", [False, True])
def test_compare_means_ties_the_pieces_together(control: np.ndarray, treatment: np.ndarray, sequential: bool) -> None:
    def sums(data: np.ndarray) -> tuple[int, float, float]:
        return len(data), float(data.sum()), float((data**2).sum())

    result = S.compare_means(sums(control), sums(treatment), sequential=sequential)
    assert set(result) == KEYS
    stats_c, stats_t = S.mean_and_variance(*sums(control)), S.mean_and_variance(*sums(treatment))
    (mean_c, var_c), (mean_t, var_t), n_c, n_t = stats_c, stats_t, len(control), len(treatment)
    assert result["uplift"] == pytest.approx(mean_t / mean_c - 1, rel=1e-12)
    assert result["chance_to_win"] == S.normal_chance_to_beat(mean_c, var_c, n_c, mean_t, var_t, n_t)
    assert result["expected_loss"] == S.normal_expected_loss(mean_c, var_c, n_c, mean_t, var_t, n_t)
    if sequential:
        variance = var_c / n_c + var_t / n_t
        expected_p, (low, high) = _growthbook_sequential(mean_t - mean_c, variance, n_c + n_t, 0.05, 5000)
        assert result["p_value"] == pytest.approx(expected_p, rel=1e-10)
        assert result["uplift_interval"] == pytest.approx(sorted([low / mean_c, high / mean_c]), rel=1e-10)
    else:
        assert result["p_value"] == S.welch_p_value(mean_c, var_c, n_c, mean_t, var_t, n_t)
    json.dumps(result, allow_nan=False)


EDGE_SUMMARIES = [
    ((0, 0.0, 0.0), (0, 0.0, 0.0)),
    ((0, 0.0, 0.0), (5, 10.0, 30.0)),
    ((1, 4.0, 16.0), (1, 6.0, 36.0)),
    ((5, 10.0, 20.0), (5, 15.0, 45.0)),  # zero variance in both arms
    ((None, None, None), ("3", "x", None)),
    ((10, float("nan"), 1.0), (10, 1.0, 1.0)),
]


@pytest.mark.parametrize(("control", "treatment"), EDGE_SUMMARIES)
@pytest.mark.parametrize("sequential", [False, True])
def test_compare_means_edge_cases_give_none_not_errors(control, treatment, sequential: bool) -> None:
    result = S.compare_means(control, treatment, sequential=sequential)
    assert set(result) == KEYS
    json.dumps(result, allow_nan=False)
    assert result["p_value"] is None and result["uplift_interval"] is None


@pytest.mark.parametrize("sequential", [False, True])
def test_compare_means_with_a_zero_control_mean_has_no_uplift_but_a_test(sequential: bool) -> None:
    result = S.compare_means((5, 0.0, 0.0), (5, 15.0, 47.0), sequential=sequential)
    assert result["uplift"] is None and result["uplift_interval"] is None
    assert 0 < result["p_value"] < 1 and 0.5 < result["chance_to_win"] <= 1


def test_compare_means_single_visitors_still_report_the_uplift() -> None:
    result = S.compare_means((1, 4.0, 16.0), (1, 6.0, 36.0), sequential=False)
    assert result["uplift"] == pytest.approx(0.5)
    assert result["chance_to_win"] is None and result["expected_loss"] is None


@pytest.mark.parametrize("sequential", [False, True])
def test_compare_proportions_never_raises_nor_returns_nan(sequential: bool) -> None:
    rng = np.random.default_rng(5)
    cases = [(0, 0, 0, 0), (0, 0, 3, 10), (5, 3, 1, 2), (-1, 4, 1, 4), (1, 1, 1, 1), (0, 1, 1, 1)]
    cases += [tuple(int(v) for v in rng.integers(0, 30, 4)) for _ in range(300)]
    for x_c, n_c, x_t, n_t in cases:
        result = S.compare_proportions((x_c, n_c), (x_t, n_t), sequential=sequential)
        json.dumps(result, allow_nan=False)
        valid = 0 <= x_c <= n_c and 0 <= x_t <= n_t and n_c > 0 and n_t > 0
        assert (result["chance_to_win"] is not None) == valid


def test_statistics_and_bandit_import_neither_scipy_nor_statsmodels() -> None:
    for module in ("statistics.py", "bandit.py"):
        tree = ast.parse((Path(S.__file__).parent / module).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= {"__future__", "math", "collections", "dataclasses", "numpy"}, (module, imported)
