"""Continuous metrics: independent samples (Welch or Student t, Mann-Whitney, bootstrap) and paired
designs (paired t, Wilcoxon signed-rank, paired bootstrap). scipy underneath.

    welch(scores_a, scores_b)             # effect = mean(B) - mean(A), with a Welch CI
    t_test(a, b, equal_var=True, alternative="greater")   # Student's t, one-sided
    paired_t(scores_a, scores_b)          # the same prompts in both arms: much more power
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import (
    Alternative,
    NanPolicy,
    check_alternative,
    check_confidence,
    need,
    pairs,
    values,
    z_interval,
)
from orchestra.analysis.ab.result import TestResult

BOOTSTRAP_RESAMPLES = 2_000


def _names(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": kwargs.get("metric", "metric"),
        "arm_a": kwargs.get("arm_a", "A"),
        "arm_b": kwargs.get("arm_b", "B"),
    }


def t_test(
    a: Any,
    b: Any,
    *,
    equal_var: bool = False,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Two-sample t-test of mean(B) - mean(A): Welch's (default) or Student's pooled-variance test.

    Conventions: `scipy.stats.ttest_ind`; Welch-Satterthwaite degrees of freedom when
    `equal_var=False`, n_a + n_b - 2 (pooled variance) when True, as R's `t.test(var.equal=)`.
    The CI is the matching t interval, one-sided (an infinite end) for a one-sided alternative;
    "greater" means B > A. Zero variance in both arms: the difference is exact (p 0 or 1).

        t_test(scores_a, scores_b, equal_var=True, alternative="greater")
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    x, dropped_a = values(a, "arm A", nan_policy)
    y, dropped_b = values(b, "arm B", nan_policy)
    label = "Student's t-test" if equal_var else "Welch's t-test"
    need(min(x.size, y.size), 2, label)
    difference = float(y.mean() - x.mean())
    p, low, high, extra = _t_test(
        lambda: stats.ttest_ind(y, x, equal_var=equal_var, alternative=alternative),
        exact=x.var() == 0 and y.var() == 0,
        effect=difference,
        confidence=confidence,
        alternative=alternative,
        note="both arms have zero variance: the difference is exact",
    )
    return TestResult(
        method=label,
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(x.mean()),
        estimate_b=float(y.mean()),
        effect=difference,
        ci_low=low,
        ci_high=high,
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={"dropped_a": dropped_a, "dropped_b": dropped_b, **extra},
        **_names(names),
    )


def welch(a: Any, b: Any, **options: Any) -> TestResult:
    """Welch's t-test (unequal variances): `t_test(a, b, equal_var=False, ...)`."""
    return t_test(a, b, equal_var=False, **options)


def student_t(a: Any, b: Any, **options: Any) -> TestResult:
    """Student's pooled-variance t-test: `t_test(a, b, equal_var=True, ...)`."""
    return t_test(a, b, equal_var=True, **options)


def _t_test(
    run: Callable[[], Any],
    *,
    exact: bool,
    effect: float,
    confidence: float,
    alternative: Alternative,
    note: str,
) -> tuple[float, float, float, dict[str, Any]]:
    """(p, CI low, CI high, details) of a scipy t-test; with no variance the effect is exact."""
    if exact:
        p, low, high = z_interval(effect, 0.0, confidence, alternative)
        return p, low, high, {"note": note}
    result = run()
    interval = result.confidence_interval(confidence)
    details = {"t": float(result.statistic), "df": float(result.df)}
    return float(result.pvalue), float(interval.low), float(interval.high), details


def mann_whitney(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Mann-Whitney U; effect = P(B > A) + P(B = A) / 2, with the Hanley-McNeil (1982) interval.

    p-value from `scipy.stats.mannwhitneyu` (exact for small samples without ties, normal
    approximation with tie and continuity corrections otherwise); "greater" means B tends to be
    larger. At complete separation (effect 0 or 1) the Hanley-McNeil variance is zero and the
    interval collapses to a point: the result carries a warning rather than a false certainty.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    x, dropped_a = values(a, "arm A", nan_policy)
    y, dropped_b = values(b, "arm B", nan_policy)
    need(min(x.size, y.size), 1, "the Mann-Whitney U test")
    result = stats.mannwhitneyu(y, x, alternative=alternative)
    auc = float(result.statistic) / (x.size * y.size)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (y.size - 1) * (q1 - auc**2) + (x.size - 1) * (q2 - auc**2)) / (
        x.size * y.size
    )
    _, low, high = z_interval(auc, float(np.sqrt(max(variance, 0.0))), confidence, alternative)
    warnings: tuple[str, ...] = ()
    if auc in (0.0, 1.0):
        warnings = (
            f"complete separation (P(B>A) = {auc:g}) with {x.size} and {y.size} observation(s): "
            "the Hanley-McNeil interval has zero width and does not reflect the uncertainty",
        )
    return TestResult(
        method="Mann-Whitney U",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(np.median(x)),
        estimate_b=float(np.median(y)),
        effect=auc,
        ci_low=max(low, 0.0),
        ci_high=min(high, 1.0),
        p_value=float(result.pvalue),
        effect_kind="P(B>A)",
        confidence=confidence,
        alternative=alternative,
        details={"U": float(result.statistic), "dropped_a": dropped_a, "dropped_b": dropped_b},
        warnings=warnings,
        **_names(names),
    )


def bootstrap_difference(
    a: Any,
    b: Any,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    paired: bool = False,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    nan_policy: NanPolicy = "drop",
    method_name: str | None = None,
    **names: Any,
) -> TestResult:
    """Bootstrap (BCa where possible, percentile otherwise) CI of statistic(B) - statistic(A)."""
    if paired:
        x, y, dropped = pairs(a, b, nan_policy)
        need(x.size, 2, "a paired bootstrap")
        samples: tuple[np.ndarray, ...] = (x, y)
    else:
        x, _ = values(a, "arm A", nan_policy)
        y, _ = values(b, "arm B", nan_policy)
        need(min(x.size, y.size), 2, "a bootstrap")
        samples, dropped = (x, y), 0

    def difference(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(second, axis=axis) - statistic(first, axis=axis)

    effect = float(difference(x, y))
    rng = np.random.default_rng(seed)
    try:
        result = stats.bootstrap(
            samples,
            difference,
            paired=paired,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=resamples,
            method="BCa",
            random_state=rng,
        )
    except (ValueError, FloatingPointError):
        result = stats.bootstrap(
            samples,
            difference,
            paired=paired,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if np.isnan(low):  # a degenerate resampling distribution (zero variance): the estimate is exact
        low = high = effect
    label = (
        method_name
        or f"{'paired ' if paired else ''}bootstrap of the {getattr(statistic, '__name__', '')} difference"
    )
    return TestResult(
        method=label,
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(statistic(x)),
        estimate_b=float(statistic(y)),
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=None,
        confidence=confidence,
        details={"resamples": resamples, "seed": seed, "dropped_pairs": dropped},
        **_names(names),
    )


def paired_t(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Paired t-test on B - A per unit (e.g. per prompt); `scipy.stats.ttest_rel`, t interval
    (one-sided for a one-sided alternative). Constant differences: the effect is exact."""
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    x, y, dropped = pairs(a, b, nan_policy)
    need(x.size, 2, "the paired t-test")
    differences = y - x
    effect = float(differences.mean())
    p, low, high, extra = _t_test(
        lambda: stats.ttest_rel(y, x, alternative=alternative),
        exact=differences.var() == 0,
        effect=effect,
        confidence=confidence,
        alternative=alternative,
        note="every pair differs by the same amount: the difference is exact",
    )
    return TestResult(
        method="paired t-test",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(x.mean()),
        estimate_b=float(y.mean()),
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={"dropped_pairs": dropped, **extra},
        **_names(names),
    )


def wilcoxon(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Wilcoxon signed-rank on B - A; effect = median difference with an order-statistic CI.

    Zero differences are handled by Pratt's method; if every difference is zero, p = 1. The
    interval is the distribution-free (sign-test) interval of the median difference; its level
    is discrete, so with few pairs it cannot reach `confidence`: then `confidence` is set to the
    true level (e.g. 93.75% for 5 pairs) and a warning says so.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    x, y, dropped = pairs(a, b, nan_policy)
    need(x.size, 2, "the Wilcoxon signed-rank test")  # one pair: a 0% interval
    differences = y - x
    all_zero = bool(np.all(differences == 0))
    if all_zero:
        p = 1.0
    else:
        p = float(stats.wilcoxon(differences, zero_method="pratt", alternative=alternative).pvalue)
    median = float(np.median(differences))
    low, high, level = order_statistic_interval(differences, 0.5, confidence, alternative)
    warnings: tuple[str, ...] = ()
    if level < confidence - 1e-12:
        warnings = (
            f"with {x.size} pair(s) the order-statistic interval reaches only {level:.2%} "
            f"(asked {confidence:.0%}); its true level is reported",
        )
    return TestResult(
        method="Wilcoxon signed-rank",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(np.median(x)),
        estimate_b=float(np.median(y)),
        effect=median,
        ci_low=low,
        ci_high=high,
        p_value=p,
        effect_kind="median difference",
        confidence=min(confidence, level),
        alternative=alternative,
        details={"dropped_pairs": dropped, "achieved_confidence": level},
        warnings=warnings,
        **_names(names),
    )


def quantile_interval(sample: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the q-quantile from order statistics (binomial; Conover, 1999)."""
    low, high, _ = order_statistic_interval(np.asarray(sample, dtype=float), q, confidence)
    return low, high


def order_statistic_interval(
    sample: np.ndarray, q: float, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> tuple[float, float, float]:
    """(low, high, true level) of the order-statistic interval of the q-quantile.

    The number of values below the quantile is Binomial(n, q); [X_(l), X_(u)] covers it with
    probability F(u - 1) - F(l - 1) (Conover, 1999, 3.2). One-sided intervals have an infinite end.
    """
    n = sample.size
    if n == 0:
        return float("nan"), float("nan"), 0.0
    ordered = np.sort(sample)
    binomial = stats.binom(n, q)
    tail = 1 - confidence if alternative != "two-sided" else (1 - confidence) / 2
    low_index = max(int(binomial.ppf(tail)) - 1, 0)
    high_index = min(int(binomial.ppf(1 - tail)), n - 1)
    if alternative == "greater":
        return float(ordered[low_index]), math.inf, float(binomial.sf(low_index))
    if alternative == "less":
        return -math.inf, float(ordered[high_index]), float(binomial.cdf(high_index))
    level = float(binomial.cdf(high_index) - binomial.cdf(low_index))
    return float(ordered[low_index]), float(ordered[high_index]), level
