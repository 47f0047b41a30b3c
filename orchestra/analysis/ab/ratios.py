"""Ratio metrics (cost per successful request = sum of cost / number of successes) by the delta
method, and quantiles of heavy-tailed metrics (latency, cost) with the right interval for n.

    ratio_difference(cost_a, success_a, cost_b, success_b, paired=True)
    quantile_difference(latency_a, latency_b, q=0.95, log=True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import (
    Alternative,
    NanPolicy,
    as_array,
    check_alternative,
    check_confidence,
    need,
    pairs,
    values,
    z_interval,
)
from orchestra.analysis.ab.means import _names, bootstrap_difference, quantile_interval
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError

LARGE_SAMPLE = 5_000
"""From this many observations per arm, analytic / order-statistic intervals replace the bootstrap."""


def ratio_difference(
    numerator_a: Any,
    denominator_a: Any,
    numerator_b: Any,
    denominator_b: Any,
    *,
    paired: bool = False,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    **names: Any,
) -> TestResult:
    """R_B - R_A for R = mean(numerator) / mean(denominator), per-unit values, delta method
    with a normal interval (one-sided for a one-sided alternative).

    The variance is the gradient of (x_b / y_b - x_a / y_a) through the covariance of the four
    unit-level means (Deng et al., 2018, "Applying the Delta Method in Metric Analytics"); a
    paired design keeps the covariance between arms.
    """
    confidence = check_confidence(confidence)
    na, da = as_array(numerator_a, "numerator A"), as_array(denominator_a, "denominator A")
    nb, db = as_array(numerator_b, "numerator B"), as_array(denominator_b, "denominator B")
    for arm, numerator, denominator in (("A", na, da), ("B", nb, db)):
        if numerator.size != denominator.size:
            raise AnalysisError(
                f"arm {arm}: numerator and denominator need one value per unit each "
                f"(got {numerator.size} and {denominator.size})"
            )
    if paired and na.size != nb.size:
        raise AnalysisError(f"a paired ratio needs the same units in both arms (got {na.size} and {nb.size})")
    for name, array in (
        ("numerator A", na),
        ("denominator A", da),
        ("numerator B", nb),
        ("denominator B", db),
    ):
        if np.isnan(array).any():
            raise AnalysisError(f"{name} has missing values: drop those units first")
        if np.isinf(array).any():
            raise AnalysisError(f"{name} holds infinite values: drop or cap them first")
    need(min(na.size, nb.size), 2, "the delta method")
    means = np.array([na.mean(), da.mean(), nb.mean(), db.mean()])
    if means[1] == 0 or means[3] == 0:
        raise AnalysisError("a ratio's denominator averages zero in one arm (e.g. no successful request)")
    ratio_a, ratio_b = means[0] / means[1], means[2] / means[3]
    gradient = np.array([-1 / means[1], means[0] / means[1] ** 2, 1 / means[3], -means[2] / means[3] ** 2])
    if paired:
        covariance = np.cov(np.vstack([na, da, nb, db])) / na.size
    else:
        covariance = np.zeros((4, 4))
        covariance[:2, :2] = np.cov(np.vstack([na, da])) / na.size
        covariance[2:, 2:] = np.cov(np.vstack([nb, db])) / nb.size
    se = float(np.sqrt(max(gradient @ covariance @ gradient, 0.0)))
    effect = float(ratio_b - ratio_a)
    p, low, high = z_interval(effect, se, confidence, check_alternative(alternative))
    return TestResult(
        method=f"delta method{' (paired)' if paired else ''}",
        n_a=na.size,
        n_b=nb.size,
        estimate_a=float(ratio_a),
        estimate_b=float(ratio_b),
        effect=effect,
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={"se": se},
        **_names(names),
    )


def quantile_difference(
    a: Any,
    b: Any,
    *,
    q: float = 0.95,
    paired: bool = False,
    log: bool = False,
    confidence: float = 0.95,
    resamples: int = 2_000,
    seed: int = 0,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Difference of the q-quantiles (or their ratio with `log=True`, for heavy tails).

    Small samples: a seeded bootstrap (paired resampling for paired designs). From 5,000 values per
    arm: each arm's order-statistic interval gives its standard error and the difference gets a
    normal interval (for paired data this ignores the correlation between arms: conservative
    when it is positive, as for latencies of the same prompts).
    """
    if paired:
        x, y, _ = pairs(a, b, nan_policy)
    else:
        x, _ = values(a, "arm A", nan_policy)
        y, _ = values(b, "arm B", nan_policy)
    need(min(x.size, y.size), 2, "a quantile comparison")
    if log:
        if (x <= 0).any() or (y <= 0).any():
            raise AnalysisError("log scale needs positive values")
        x, y = np.log(x), np.log(y)
    label = f"p{round(q * 100):d}{' (log scale)' if log else ''}"
    if min(x.size, y.size) < LARGE_SAMPLE:
        result = bootstrap_difference(
            x,
            y,
            statistic=lambda v, axis=-1: np.quantile(v, q, axis=axis),
            paired=paired,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            method_name=f"{'paired ' if paired else ''}bootstrap of the {label} difference",
            **names,
        )
        effect, low, high, p, method = result.effect, result.ci_low, result.ci_high, None, result.method
    else:
        qa, qb = float(np.quantile(x, q)), float(np.quantile(y, q))
        z = stats.norm.ppf(0.5 + confidence / 2)
        se_a = np.subtract(*reversed(quantile_interval(x, q, confidence))) / (2 * z)
        se_b = np.subtract(*reversed(quantile_interval(y, q, confidence))) / (2 * z)
        se = float(np.hypot(se_a, se_b))
        effect = qb - qa
        low, high = effect - z * se, effect + z * se
        p = (1.0 if effect == 0 else 0.0) if se == 0 else float(2 * stats.norm.sf(abs(effect) / se))
        method = f"order-statistic intervals of the {label}"
    estimate_a, estimate_b = float(np.quantile(x, q)), float(np.quantile(y, q))
    kind = "difference"
    if log:  # back to the original scale: a ratio of quantiles
        effect, low, high = float(np.exp(effect)), float(np.exp(low)), float(np.exp(high))
        estimate_a, estimate_b, kind = float(np.exp(estimate_a)), float(np.exp(estimate_b)), "ratio"
    return TestResult(
        method=method,
        n_a=x.size,
        n_b=y.size,
        estimate_a=estimate_a,
        estimate_b=estimate_b,
        effect=float(effect),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        effect_kind=kind,
        confidence=confidence,
        details={"q": q, "log": log},
        **_names(names),
    )
