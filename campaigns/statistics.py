"""Statistics for experiments: pure functions over counts and sums, no Django, no scipy (tested against scipy and
statsmodels in tests/campaigns/test_statistics.py). Every public statistic returns None where it is undefined and
never raises, NaN or infinity, so results go straight to JSON.

Definitions (control c, treatment t; x conversions of n visitors; a metric per visitor has n, sum, sum of squares):
- wilson_interval: Wilson score interval for x / n.
- two_proportion_p_value: pooled two-sided z-test, z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t)), p pooled.
- welch_p_value: Welch's t-test from summary statistics, Welch-Satterthwaite degrees of freedom.
- uplift_proportions: p_t / p_c - 1 with the Katz log interval exp(ln(ratio) +- z sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c))
  - 1 (statsmodels confint_proportions_2indep(compare="ratio", method="log")).
- uplift_means: (m_t - m_c) / m_c with Welch's interval for m_t - m_c divided by m_c (the control mean's own
  uncertainty is left out, as GrowthBook's absolute-to-relative display does).
- beta_chance_to_beat: P(p_t > p_c) under Beta(1 + x, 1 + n - x) posteriors, exact (Evan Miller's closed form,
  summed in log space outwards from its largest term; ~1e-11 relative at a million visitors, milliseconds);
  beta_expected_loss: E[max(p_c - p_t, 0)], the rate lost by choosing t (after Stucchio):
  (m_c - m_t) P(p_c > p_t) + B(a_c + a_t, b_c + b_t) / (B(a_c, b_c) B(a_t, b_t)) (1/(a_c + b_c) + 1/(a_t + b_t)).
- normal_chance_to_beat / normal_expected_loss: the same for means, posteriors N(m, var / n).
- srm_p_value: chi-square goodness of fit of the visitors per arm to the expected counts.
- holm_adjust: Holm-Bonferroni step-down adjusted p-values.
- msprt_p_value / msprt_interval: the normal-mixture mSPRT (Johari et al. 2017) on the absolute difference d with
  variance V: Lambda = sqrt(V / (V + tau2)) exp(tau2 d^2 / (2 V (V + tau2))), p = min(1, 1 / Lambda), and the
  confidence sequence d +- sqrt(V (V + tau2) / tau2 (2 ln(1/alpha) + ln((V + tau2) / V))).
  sequential_tau2 picks tau2 = rho^2 V n with rho^2 = (2 ln(1/alpha) + ln(2 ln(1/alpha) + 1)) / N*, N* = 5000
  (GrowthBook's sequentialTuningParameter): V n estimates the per-visitor variance, and the interval is narrowest
  when n = n_c + n_t reaches N*. This is exactly GrowthBook's SequentialTwoSidedTTest (Waudby-Smith et al.).
  For proportions V = p_c (1 - p_c) / n_c + p_t (1 - p_t) / n_t; the relative interval is the absolute one over the
  control's observed value.

Undefined, so None: anything without visitors in an arm; p-values when nobody or everybody converted (no variance);
the uplift when the control's rate or mean is 0; the Katz interval when the treatment has no conversion or everybody
converted in both arms; Welch, the Gaussian chance and loss, and the sequential test for means with under two
visitors in an arm or no variance in either. Bad input (negative counts, x > n, NaN, text) is None too.

Special functions, all checked against scipy: normal quantile (Acklam, polished by Halley steps), regularized
incomplete beta (Lentz's continued fraction) for Student's t up to 10,000 degrees of freedom and Hill's expansion
above, Student's t quantile by safeguarded Newton steps, regularized upper incomplete gamma for the chi-square, and
ln B with Stirling corrections for large arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ALPHA = 0.05
SRM_THRESHOLD = 0.001
SEQUENTIAL_TUNING_N = 5000

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 100_000
_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
# Terms of the closed-form chance to beat summed per numpy chunk: bounds memory at any number of conversions.
_CHUNK = 65_536
# exp() of a log below this is 0 in double precision: terms that far under the peak change nothing.
_UNDERFLOW_LOG = -745.0


# --- Special functions -------------------------------------------------------------------------------------------


# Stirling series of ln Gamma(x) - ((x - 1/2) ln x - x + ln sqrt(2 pi)) in powers of 1/x^2: exact to 1e-17 from 10 on.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_correction(x: float) -> float:
    inverse_square = 1.0 / (x * x)
    total = 0.0
    for coefficient in reversed(_STIRLING):
        total = total * inverse_square + coefficient
    return total / x


def log_beta(a: float, b: float) -> float:
    """ln B(a, b). With a large argument, ln Gamma differences cancel badly (1e-7 off at 1e8), so the Stirling
    corrections are subtracted directly, as R's lbeta does."""
    p, q = min(a, b), max(a, b)
    if p >= 10.0:
        correction = _stirling_correction(p) + _stirling_correction(q) - _stirling_correction(p + q)
        return (-0.5 * math.log(q) + _LN_SQRT_2PI + correction + (p - 0.5) * math.log(p / (p + q))
                + q * math.log1p(-p / (p + q)))
    if q >= 10.0:
        correction = _stirling_correction(q) - _stirling_correction(p + q)
        return math.lgamma(p) + correction + p - p * math.log(p + q) + (q - 0.5) * math.log1p(-p / (p + q))
    return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / _SQRT_2PI


# Acklam's rational approximation of the normal quantile, polished below by Halley steps to full precision.
_PPF_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
          -3.066479806614716e01, 2.506628277459239e00)
_PPF_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
          -1.328068155288572e01)
_PPF_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
          4.374664141464968e00, 2.938163982698783e00)
_PPF_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)


def _polynomial(coefficients: Sequence[float], x: float) -> float:
    value = 0.0
    for coefficient in coefficients:
        value = value * x + coefficient
    return value


def normal_ppf(p: float) -> float:
    """The standard normal quantile; p must lie in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must lie in (0, 1)")
    if p > 0.5:
        return -normal_ppf(1.0 - p)
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = _polynomial(_PPF_C, q) / (_polynomial(_PPF_D, q) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = _polynomial(_PPF_A, r) * q / (_polynomial(_PPF_B, r) * r + 1.0)
    for _ in range(2):
        error = normal_cdf(x) - p
        u = error * _SQRT_2PI * math.exp(0.5 * x * x)
        x -= u / (1.0 + 0.5 * x * u)
    return x


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) by Lentz's method (Numerical Recipes' betacf)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            delta = d * c
            h *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return h


def regularized_beta(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularized incomplete beta function I_x(a, b); `y` is 1 - x when the caller knows it more exactly."""
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    # ln x as log1p(-y) near 1: a * ln x with a = 5e7 would otherwise carry x's rounding into the ninth digit.
    log_x = math.log1p(-y) if x > 0.5 else math.log(x)
    log_y = math.log1p(-x) if y > 0.5 else math.log(y)
    log_front = a * log_x + b * log_y - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, y) / b


# Above this many degrees of freedom the incomplete beta's continued fraction converges slowly and loses digits
# (1e-10 at a million), while Hill's expansion is good to 1e-13 (both measured against scipy).
_T_LARGE_DF = 10_000


def _student_t_tail_hill(t: float, df: float) -> float:
    """P(T > |t|) for large df by Hill's normalizing expansion (ACM Algorithm 395, 1970)."""
    a = df - 0.5
    b = 48.0 * a * a
    y = a * math.log1p(t * t / df)
    c = ((((-0.4 * y - 3.3) * y - 24.0) * y - 85.5) / (0.8 * y * y + 100.0 + b) + y + 3.0) / b + 1.0
    return normal_cdf(-c * math.sqrt(y))


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2) / 2 on the far side."""
    if t == 0.0:
        return 0.5
    t2 = t * t
    if df > _T_LARGE_DF:
        tail = _student_t_tail_hill(t, df)
    else:
        tail = 0.5 * regularized_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t > 0 else 1.0 - tail


def student_t_cdf(t: float, df: float) -> float:
    return student_t_sf(-t, df)


def student_t_pdf(t: float, df: float) -> float:
    log_density = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
                   - 0.5 * (df + 1.0) * math.log1p(t * t / df))
    return math.exp(log_density)


def student_t_ppf(p: float, df: float) -> float:
    """Student's t quantile; p must lie in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must lie in (0, 1)")
    if p == 0.5:
        return 0.0
    return -_student_t_upper_quantile(p, df) if p < 0.5 else _student_t_upper_quantile(1.0 - p, df)


def _student_t_upper_quantile(tail: float, df: float) -> float:
    """The t > 0 with P(T > t) = tail < 1/2, by Newton steps on the tail kept inside a bisection bracket."""
    guess = -normal_ppf(tail)
    low, high = 0.0, max(1.0, 2.0 * guess)
    while student_t_sf(high, df) > tail:
        low, high = high, 2.0 * high
    t = min(max(guess, low), high)
    for _ in range(200):
        excess = student_t_sf(t, df) - tail  # falls as t grows
        if excess > 0:
            low = t
        else:
            high = t
        density = student_t_pdf(t, df)
        candidate = t + excess / density if density > 0 else 0.5 * (low + high)
        if not low < candidate < high:
            candidate = 0.5 * (low + high)
        if abs(candidate - t) <= 1e-15 * max(1.0, abs(t)):
            return candidate
        t = candidate
    return t


def regularized_gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x): a series below a + 1, a continued fraction above."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(_MAX_ITERATIONS):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    b = x + 1.0 - a
    c, d = 1.0 / _TINY, 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        numerator = -i * (i - a)
        b += 2.0
        d = numerator * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + numerator / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return math.exp(log_front) * h


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for a chi-square with `df` degrees of freedom."""
    return regularized_gamma_q(0.5 * df, 0.5 * x)


# --- Guards --------------------------------------------------------------------------------------------------------


def _finite(*values: float) -> bool:
    """Every value is a finite real number (int, float, numpy scalar or Decimal)."""
    try:
        return all(math.isfinite(float(value)) for value in values)
    except (TypeError, ValueError):
        return False


def _counts(x: int, n: int) -> bool:
    """x successes of n trials, n > 0."""
    return _finite(x, n) and 0 <= x <= n and n > 0


def _clean(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _two_sided_z(confidence: float) -> float | None:
    return normal_ppf(0.5 + 0.5 * confidence) if _finite(confidence) and 0.0 < confidence < 1.0 else None


# --- Descriptive ---------------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval for successes / n; None when n == 0."""
    z = _two_sided_z(confidence)
    if not _counts(successes, n) or z is None:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def mean_and_variance(n: int, total: float, total_sq: float) -> tuple[float, float] | None:
    """Mean and sample variance (ddof=1; 0 when n == 1) from n, the sum and the sum of squares; None when n == 0.
    Rounding can push the sum-of-squares formula just below zero; it is clamped."""
    if not _finite(n, total, total_sq) or n <= 0:
        return None
    mean = total / n
    variance = 0.0 if n == 1 else max(0.0, (total_sq - total * mean) / (n - 1))
    return (mean, variance) if _finite(mean, variance) else None


# --- Fixed-horizon tests -------------------------------------------------------------------------------------------


def two_proportion_p_value(x_c: int, n_c: int, x_t: int, n_t: int) -> float | None:
    """Pooled two-sided z-test; None without visitors in an arm or when nobody (or everybody) converted."""
    if not (_counts(x_c, n_c) and _counts(x_t, n_t)):
        return None
    pooled = (x_c + x_t) / (n_c + n_t)
    variance = pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)
    if variance <= 0.0:
        return None
    z = (x_t / n_t - x_c / n_c) / math.sqrt(variance)
    return math.erfc(abs(z) / _SQRT2)


def welch_df(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    """Welch-Satterthwaite degrees of freedom (n >= 2 in both arms, not both variances zero)."""
    share_c, share_t = var_c / n_c, var_t / n_t
    return (share_c + share_t) ** 2 / (share_c**2 / (n_c - 1) + share_t**2 / (n_t - 1))


def _welch_parts(mean_c, var_c, n_c, mean_t, var_t, n_t) -> tuple[float, float, float] | None:
    """(difference, standard error, df), or None when Welch's test is undefined: n < 2 or no variance at all."""
    if not _finite(mean_c, var_c, n_c, mean_t, var_t, n_t) or n_c < 2 or n_t < 2 or var_c < 0 or var_t < 0:
        return None
    variance = var_c / n_c + var_t / n_t
    if variance <= 0.0:
        return None
    return mean_t - mean_c, math.sqrt(variance), welch_df(var_c, n_c, var_t, n_t)


def welch_p_value(mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int) -> float | None:
    """Welch's two-sided t-test from summary statistics; None when an arm has under two visitors or neither varies."""
    parts = _welch_parts(mean_c, var_c, n_c, mean_t, var_t, n_t)
    if parts is None:
        return None
    difference, error, df = parts
    return _clean(min(1.0, 2.0 * student_t_sf(abs(difference) / error, df)))


# --- Relative uplift -----------------------------------------------------------------------------------------------


def uplift_proportions(
    x_c: int, n_c: int, x_t: int, n_t: int, *, confidence: float = 0.95
) -> tuple[float | None, tuple[float, float] | None]:
    """(p_t / p_c - 1, Katz log interval). The uplift is None when the control has no conversion; the interval is
    None also when the treatment has none (log 0) or when everybody converted in both arms (zero variance)."""
    z = _two_sided_z(confidence)
    if not (_counts(x_c, n_c) and _counts(x_t, n_t)) or z is None or x_c == 0:
        return None, None
    ratio = (x_t / n_t) / (x_c / n_c)
    uplift = ratio - 1.0
    if x_t == 0:
        return uplift, None
    variance = 1.0 / x_t - 1.0 / n_t + 1.0 / x_c - 1.0 / n_c
    if variance <= 0.0:
        return uplift, None
    half = z * math.sqrt(variance)
    return uplift, (math.exp(math.log(ratio) - half) - 1.0, math.exp(math.log(ratio) + half) - 1.0)


def _relative(interval: tuple[float, float], baseline: float) -> tuple[float, float]:
    low, high = interval[0] / baseline, interval[1] / baseline
    return (low, high) if low <= high else (high, low)


def uplift_means(
    mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int, *, confidence: float = 0.95
) -> tuple[float | None, tuple[float, float] | None]:
    """((m_t - m_c) / m_c, Welch's interval for m_t - m_c over m_c). The uplift is None without visitors or with a
    zero control mean; the interval is None also when Welch's test is undefined."""
    if not _finite(mean_c, var_c, n_c, mean_t, var_t, n_t) or n_c < 1 or n_t < 1 or mean_c == 0:
        return None, None
    uplift = _clean((mean_t - mean_c) / mean_c)
    parts = _welch_parts(mean_c, var_c, n_c, mean_t, var_t, n_t)
    if parts is None or uplift is None or not 0.0 < confidence < 1.0:
        return uplift, None
    difference, error, df = parts
    half = student_t_ppf(0.5 + 0.5 * confidence, df) * error
    return uplift, _relative((difference - half, difference + half), mean_c)


# --- Bayesian ------------------------------------------------------------------------------------------------------


def _miller_sum(a_x: int, b_x: float, a_y: float, b_y: float) -> float:
    """P(X > Y), X ~ Beta(a_x, b_x), Y ~ Beta(a_y, b_y), integer a_x (Evan Miller): the sum over i < a_x of
    term_i = B(a_y + i, b_x + b_y) / ((b_x + i) B(1 + i, b_x) B(a_y, b_y)), where
    term_{i+1} / term_i = (a_y + i)(b_x + i) / ((a_y + b_x + b_y + i)(1 + i)).

    That ratio exceeds 1 exactly while i < (a_y b_x - a_y - b_x - b_y) / (b_y + 1), so the terms rise to one peak
    and fall. The peak term comes from its closed form and the others are added outwards from it, relative to it,
    until they underflow: a running sum of log ratios from term 0 would carry the rounding of a log near -35,000
    at 50,000 conversions (4e-10), and the terms far from the peak are not computed at all (a few thousand terms
    at any size, so milliseconds even at millions of conversions)."""
    total = a_y + b_x + b_y

    def log_ratios(start: int, stop: int) -> np.ndarray:  # ln(term_{i+1} / term_i) for start <= i < stop
        i = np.arange(start, stop, dtype=np.float64)
        return np.log(a_y + i) + np.log(b_x + i) - np.log(total + i) - np.log1p(i)

    peak = min(a_x - 1, max(0, math.ceil((a_y * b_x - total) / (b_y + 1))))
    log_peak = log_beta(a_y + peak, b_x + b_y) - math.log(b_x + peak) - log_beta(1 + peak, b_x) - log_beta(a_y, b_y)
    scaled = 1.0  # the peak term, relative to itself
    start, carry = peak, 0.0
    while start < a_x - 1:  # terms peak + 1 ... a_x - 1
        stop = min(a_x - 1, start + _CHUNK)
        logs = carry + np.cumsum(log_ratios(start, stop))
        scaled += float(np.exp(logs).sum())
        start, carry = stop, float(logs[-1])
        if carry < _UNDERFLOW_LOG:
            break
    stop, carry = peak, 0.0
    while stop > 0:  # terms peak - 1 ... 0: term_i = term_{i+1} / ratio_i
        start = max(0, stop - _CHUNK)
        logs = carry - np.cumsum(log_ratios(start, stop)[::-1])
        scaled += float(np.exp(logs).sum())
        stop, carry = start, float(logs[-1])
        if carry < _UNDERFLOW_LOG:
            break
    return min(1.0, max(0.0, math.exp(log_peak + math.log(scaled))))


def prob_beta_greater(a_x: int, b_x: int, a_y: int, b_y: int) -> float:
    """P(X > Y) for X ~ Beta(a_x, b_x), Y ~ Beta(a_y, b_y) with integer parameters, exact. Sums over the smaller of
    a_x and b_y (X > Y exactly when 1 - Y > 1 - X, and 1 - Y ~ Beta(b_y, a_y)); no subtraction, so a tiny chance
    keeps its precision."""
    if a_x <= b_y:
        return _miller_sum(a_x, b_x, a_y, b_y)
    return _miller_sum(b_y, a_y, b_x, a_x)


def _posteriors(x_c: int, n_c: int, x_t: int, n_t: int) -> tuple[int, int, int, int] | None:
    """Beta(1 + x, 1 + n - x) parameters (control, treatment); None without visitors in an arm."""
    if not (_counts(x_c, n_c) and _counts(x_t, n_t)):
        return None
    x_c, n_c, x_t, n_t = int(x_c), int(n_c), int(x_t), int(n_t)
    return 1 + x_c, 1 + n_c - x_c, 1 + x_t, 1 + n_t - x_t


def beta_chance_to_beat(x_c: int, n_c: int, x_t: int, n_t: int) -> float | None:
    """P(p_t > p_c) under Beta(1, 1) priors, exact; None without visitors in an arm."""
    posteriors = _posteriors(x_c, n_c, x_t, n_t)
    if posteriors is None:
        return None
    a_c, b_c, a_t, b_t = posteriors
    return prob_beta_greater(a_t, b_t, a_c, b_c)


def beta_expected_loss(x_c: int, n_c: int, x_t: int, n_t: int) -> float | None:
    """E[max(p_c - p_t, 0)], the conversion rate lost by choosing t (after Stucchio). Stucchio's
    m_c P(Beta(a_c + 1, b_c) > p_t) - m_t P(p_c > Beta(a_t + 1, b_t)) cancels badly when the loss is small; with
    I_x(a + 1, b) = I_x(a, b) - x^a (1 - x)^b / (a B(a, b)) both chances become P(p_c > p_t) plus or minus
    K / a, K = B(a_c + a_t, b_c + b_t) / (B(a_c, b_c) B(a_t, b_t)), which leaves
    (m_c - m_t) P(p_c > p_t) + K (1 / (a_c + b_c) + 1 / (a_t + b_t))."""
    posteriors = _posteriors(x_c, n_c, x_t, n_t)
    if posteriors is None:
        return None
    a_c, b_c, a_t, b_t = posteriors
    mean_c, mean_t = a_c / (a_c + b_c), a_t / (a_t + b_t)
    k = math.exp(log_beta(a_c + a_t, b_c + b_t) - log_beta(a_c, b_c) - log_beta(a_t, b_t))
    loss = (mean_c - mean_t) * prob_beta_greater(a_c, b_c, a_t, b_t) + k * (1 / (a_c + b_c) + 1 / (a_t + b_t))
    return max(0.0, loss)


def _normal_posterior(mean_c, var_c, n_c, mean_t, var_t, n_t) -> tuple[float, float] | None:
    """(m_t - m_c, its standard deviation); None with under two visitors in an arm or no variance at all."""
    parts = _welch_parts(mean_c, var_c, n_c, mean_t, var_t, n_t)
    return None if parts is None else (parts[0], parts[1])


def normal_chance_to_beat(mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int) -> float | None:
    """P(mu_t > mu_c) with posteriors N(m, var / n): Phi(d / s)."""
    posterior = _normal_posterior(mean_c, var_c, n_c, mean_t, var_t, n_t)
    if posterior is None:
        return None
    difference, spread = posterior
    return normal_cdf(difference / spread)


def normal_expected_loss(mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int) -> float | None:
    """E[max(mu_c - mu_t, 0)] with posteriors N(m, var / n): s phi(d / s) - d Phi(-d / s), d = m_t - m_c."""
    posterior = _normal_posterior(mean_c, var_c, n_c, mean_t, var_t, n_t)
    if posterior is None:
        return None
    difference, spread = posterior
    ratio = difference / spread
    return max(0.0, spread * normal_pdf(ratio) - difference * normal_cdf(-ratio))


# --- Sample ratio mismatch and multiple comparisons ----------------------------------------------------------------


def srm_p_value(observed: Sequence[int], expected: Sequence[float]) -> float | None:
    """Chi-square goodness of fit of the observed visitors per arm to the expected counts, which are rescaled to
    the observed total. An arm expected to get nobody that got visitors gives 0.0; arms with neither are left out.
    None with under two arms left, no visitors, or malformed input."""
    if len(observed) != len(expected) or not _finite(*observed, *expected):
        return None
    if any(value < 0 for value in (*observed, *expected)):
        return None
    total_observed, total_expected = sum(observed), sum(expected)
    if total_observed <= 0 or total_expected <= 0:
        return None
    scale = total_observed / total_expected
    statistic, cells = 0.0, 0
    for seen, share in zip(observed, expected, strict=True):
        wanted = share * scale
        if wanted == 0:
            if seen > 0:
                return 0.0
            continue
        statistic += (seen - wanted) ** 2 / wanted
        cells += 1
    if cells < 2:
        return None
    return chi2_sf(statistic, cells - 1)


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni step-down adjusted p-values, in the input order. None (or non-finite) entries stay None and
    do not count among the hypotheses."""
    ranked = sorted((p, index) for index, p in enumerate(p_values) if p is not None and _finite(p))
    adjusted: list[float | None] = [None] * len(p_values)
    count, running = len(ranked), 0.0
    for rank, (p, index) in enumerate(ranked):
        running = max(running, min(1.0, (count - rank) * p))
        adjusted[index] = running
    return adjusted


# --- Sequential (always valid) -------------------------------------------------------------------------------------


def sequential_tau2(variance: float, n: int, *, alpha: float = ALPHA, tuning_n: float = SEQUENTIAL_TUNING_N) -> float:
    """The mixture variance tau2 = rho^2 V n, rho^2 = (2 ln(1/alpha) + ln(2 ln(1/alpha) + 1)) / N*: V n is the
    per-visitor variance of the difference, and the confidence sequence is narrowest at n = N* visitors in all."""
    log_term = 2.0 * math.log(1.0 / alpha)
    rho2 = (log_term + math.log(log_term + 1.0)) / tuning_n
    return rho2 * variance * n


def _msprt_valid(difference: float, variance: float, tau2: float) -> bool:
    return _finite(difference, variance, tau2) and variance > 0 and tau2 > 0


def msprt_p_value(difference: float, variance: float, *, tau2: float) -> float | None:
    """The always-valid p-value min(1, 1 / Lambda) of the normal-mixture mSPRT for H0: difference = 0; None for a
    non-positive variance or tau2."""
    if not _msprt_valid(difference, variance, tau2):
        return None
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2.0 * variance * (variance + tau2)
    )
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def msprt_interval(
    difference: float, variance: float, *, tau2: float, alpha: float = ALPHA
) -> tuple[float, float] | None:
    """The confidence sequence matching msprt_p_value: it excludes 0 exactly when the p-value is below alpha."""
    if not _msprt_valid(difference, variance, tau2) or not 0.0 < alpha < 1.0:
        return None
    half = math.sqrt(variance * (variance + tau2) / tau2 * (2.0 * math.log(1.0 / alpha)
                                                             + math.log((variance + tau2) / variance)))
    return difference - half, difference + half


def _sequential(difference: float, variance: float, n: int, baseline: float, alpha: float):
    """(always-valid p, relative interval): the sequence on the absolute difference divided by the control's value."""
    if not _msprt_valid(difference, variance, 1.0):
        return None, None
    tau2 = sequential_tau2(variance, n, alpha=alpha)
    interval = msprt_interval(difference, variance, tau2=tau2, alpha=alpha)
    relative = _relative(interval, baseline) if interval is not None and baseline != 0 else None
    return msprt_p_value(difference, variance, tau2=tau2), relative


# --- Comparisons ---------------------------------------------------------------------------------------------------


def _comparison(uplift, interval, p_value, chance_to_win, expected_loss) -> dict:
    interval = interval if interval is not None and _finite(*interval) else None
    return {
        "uplift": _clean(uplift),
        "uplift_interval": list(interval) if interval is not None else None,
        "p_value": _clean(p_value),
        "chance_to_win": _clean(chance_to_win),
        "expected_loss": _clean(expected_loss),
    }


def compare_proportions(
    control: tuple[int, int], treatment: tuple[int, int], *, sequential: bool, alpha: float = ALPHA
) -> dict:
    """Treatment against control for (conversions, visitors). Fixed horizon: pooled z-test and Katz interval;
    sequential: mSPRT p-value and confidence sequence on p_t - p_c (unpooled variance), divided by p_c."""
    (x_c, n_c), (x_t, n_t) = control, treatment
    if not (_counts(x_c, n_c) and _counts(x_t, n_t)) or not 0.0 < alpha < 1.0:
        return _comparison(None, None, None, None, None)
    uplift, interval = uplift_proportions(x_c, n_c, x_t, n_t, confidence=1.0 - alpha)
    if sequential:
        p_c, p_t = x_c / n_c, x_t / n_t
        variance = p_c * (1.0 - p_c) / n_c + p_t * (1.0 - p_t) / n_t
        p_value, interval = _sequential(p_t - p_c, variance, n_c + n_t, p_c, alpha)
    else:
        p_value = two_proportion_p_value(x_c, n_c, x_t, n_t)
    return _comparison(
        uplift, interval, p_value, beta_chance_to_beat(x_c, n_c, x_t, n_t), beta_expected_loss(x_c, n_c, x_t, n_t)
    )


def compare_means(
    control: tuple[int, float, float], treatment: tuple[int, float, float], *, sequential: bool, alpha: float = ALPHA
) -> dict:
    """Treatment against control for (n, sum, sum of squares). Fixed horizon: Welch's test and interval;
    sequential: mSPRT on m_t - m_c with V = var_c / n_c + var_t / n_t, divided by m_c."""
    summary_c = mean_and_variance(*_numbers(control))
    summary_t = mean_and_variance(*_numbers(treatment))
    if summary_c is None or summary_t is None or not 0.0 < alpha < 1.0:
        return _comparison(None, None, None, None, None)
    (mean_c, var_c), (mean_t, var_t) = summary_c, summary_t
    n_c, n_t = int(control[0]), int(treatment[0])
    stats = (mean_c, var_c, n_c, mean_t, var_t, n_t)
    uplift, interval = uplift_means(*stats, confidence=1.0 - alpha)
    if sequential:
        p_value, interval = (None, None) if n_c < 2 or n_t < 2 else _sequential(
            mean_t - mean_c, var_c / n_c + var_t / n_t, n_c + n_t, mean_c, alpha
        )
    else:
        p_value = welch_p_value(*stats)
    return _comparison(uplift, interval, p_value, normal_chance_to_beat(*stats), normal_expected_loss(*stats))


def _numbers(summary: Sequence) -> tuple[float, float, float]:
    """(n, sum, sum of squares) as floats: SQL sums arrive as Decimal, or None over no rows."""
    try:
        n, total, total_sq = (float(value or 0) for value in summary)
    except (TypeError, ValueError):
        return 0.0, 0.0, 0.0
    return n, total, total_sq
