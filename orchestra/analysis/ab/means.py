"""Continuous metrics: independent samples (Welch, Mann-Whitney, bootstrap) and paired designs
(paired t, Wilcoxon signed-rank, paired bootstrap). scipy underneath.

    welch(scores_a, scores_b)             # effect = mean(B) - mean(A), with a Welch CI
    paired_t(scores_a, scores_b)          # the same prompts in both arms: much more power
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import NanPolicy, need, pairs, values
from orchestra.analysis.ab.result import TestResult

BOOTSTRAP_RESAMPLES = 2_000


def _names(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": kwargs.get("metric", "metric"),
        "arm_a": kwargs.get("arm_a", "A"),
        "arm_b": kwargs.get("arm_b", "B"),
    }


def welch(
    a: Any, b: Any, *, confidence: float = 0.95, nan_policy: NanPolicy = "drop", **names: Any
) -> TestResult:
    """Welch's t-test (unequal variances); zero variance in both arms is decided exactly."""
    x, dropped_a = values(a, "arm A", nan_policy)
    y, dropped_b = values(b, "arm B", nan_policy)
    need(min(x.size, y.size), 2, "Welch's t-test")
    difference = float(y.mean() - x.mean())
    p, low, high, extra = _t_test(
        lambda: stats.ttest_ind(y, x, equal_var=False),
        exact=x.var() == 0 and y.var() == 0,
        effect=difference,
        confidence=confidence,
        note="both arms have zero variance: the difference is exact",
    )
    return TestResult(
        method="Welch's t-test",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(x.mean()),
        estimate_b=float(y.mean()),
        effect=difference,
        ci_low=low,
        ci_high=high,
        p_value=p,
        confidence=confidence,
        details={"dropped_a": dropped_a, "dropped_b": dropped_b, **extra},
        **_names(names),
    )


def _t_test(
    run: Callable[[], Any], *, exact: bool, effect: float, confidence: float, note: str
) -> tuple[float, float, float, dict[str, Any]]:
    """(p, CI low, CI high, details) of a scipy t-test; with no variance the effect is exact."""
    if exact:
        return (1.0 if effect == 0 else 0.0), effect, effect, {"note": note}
    result = run()
    interval = result.confidence_interval(confidence)
    details = {"t": float(result.statistic), "df": float(result.df)}
    return float(result.pvalue), float(interval.low), float(interval.high), details


def mann_whitney(
    a: Any, b: Any, *, confidence: float = 0.95, nan_policy: NanPolicy = "drop", **names: Any
) -> TestResult:
    """Mann-Whitney U; effect = P(B > A) + P(B = A) / 2, with the Hanley-McNeil (1982) interval."""
    x, dropped_a = values(a, "arm A", nan_policy)
    y, dropped_b = values(b, "arm B", nan_policy)
    need(min(x.size, y.size), 1, "the Mann-Whitney U test")
    result = stats.mannwhitneyu(y, x, alternative="two-sided")
    auc = float(result.statistic) / (x.size * y.size)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (y.size - 1) * (q1 - auc**2) + (x.size - 1) * (q2 - auc**2)) / (
        x.size * y.size
    )
    z = stats.norm.ppf(0.5 + confidence / 2)
    half = z * np.sqrt(max(variance, 0.0))
    return TestResult(
        method="Mann-Whitney U",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(np.median(x)),
        estimate_b=float(np.median(y)),
        effect=auc,
        ci_low=max(auc - half, 0.0),
        ci_high=min(auc + half, 1.0),
        p_value=float(result.pvalue),
        effect_kind="P(B>A)",
        confidence=confidence,
        details={"U": float(result.statistic), "dropped_a": dropped_a, "dropped_b": dropped_b},
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
    a: Any, b: Any, *, confidence: float = 0.95, nan_policy: NanPolicy = "drop", **names: Any
) -> TestResult:
    """Paired t-test on B - A per unit (e.g. per prompt)."""
    x, y, dropped = pairs(a, b, nan_policy)
    need(x.size, 2, "the paired t-test")
    differences = y - x
    effect = float(differences.mean())
    p, low, high, extra = _t_test(
        lambda: stats.ttest_rel(y, x),
        exact=differences.var() == 0,
        effect=effect,
        confidence=confidence,
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
        details={"dropped_pairs": dropped, **extra},
        **_names(names),
    )


def wilcoxon(
    a: Any, b: Any, *, confidence: float = 0.95, nan_policy: NanPolicy = "drop", **names: Any
) -> TestResult:
    """Wilcoxon signed-rank on B - A; effect = median difference with an order-statistic CI.

    Zero differences are handled by Pratt's method; if every difference is zero, p = 1.
    """
    x, y, dropped = pairs(a, b, nan_policy)
    need(x.size, 1, "the Wilcoxon signed-rank test")
    differences = y - x
    all_zero = bool(np.all(differences == 0))
    p = 1.0 if all_zero else float(stats.wilcoxon(differences, zero_method="pratt").pvalue)
    median = float(np.median(differences))
    low, high = quantile_interval(differences, 0.5, confidence)
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
        confidence=confidence,
        details={"dropped_pairs": dropped},
        **_names(names),
    )


def quantile_interval(sample: np.ndarray, q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the q-quantile from order statistics (binomial; Conover, 1999)."""
    n = sample.size
    if n == 0:
        return float("nan"), float("nan")
    ordered = np.sort(sample)
    alpha = 1 - confidence
    low_index = int(stats.binom.ppf(alpha / 2, n, q))
    high_index = int(stats.binom.ppf(1 - alpha / 2, n, q))
    return float(ordered[max(low_index - 1, 0)]), float(ordered[min(high_index, n - 1)])
