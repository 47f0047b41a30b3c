"""Error bars for evals: two models scored on the same benchmark prompts.

    clustered_difference(scores_a, scores_b, clusters=conversation_ids)  # prompts come in groups
    paired_bootstrap(scores_a, scores_b)                                 # per-prompt resampling
    eval_sample_size(0.03, sd_a=0.45, sd_b=0.45, correlation=0.5)        # prompts to detect +3 points

Conventions (Miller, 2024, "Adding Error Bars to Evals: A Statistical Approach to Language Model
Evaluations", arXiv:2411.00640). Scores are paired by prompt; the effect is the mean per-prompt
difference B - A. When prompts come in clusters (turns of one conversation, passages of one
document, a dataset subset) their errors are correlated and the usual standard error is too
small: `clustered_difference` uses the cluster-robust (sandwich) standard error of the mean
difference (statsmodels OLS with cov_type="cluster", which applies the small-sample factor
G / (G - 1) (N - 1) / (N - K); Cameron & Miller, 2015) with a t interval on G - 1 degrees of
freedom. The sample size to detect a difference delta between two models is
    n = (z_{1-alpha/2} + z_{power})^2 (sd_a^2 + sd_b^2 - 2 rho sd_a sd_b) / delta^2
prompts (Miller, 2024, section 5), the normal-approximation version of the paired t formula.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import (
    Alternative,
    as_array,
    check_alpha,
    check_alternative,
    check_confidence,
    need,
    pairs,
)
from orchestra.analysis.ab.means import _names, bootstrap_difference
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError


def clustered_difference(
    a: Any,
    b: Any,
    clusters: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    **names: Any,
) -> TestResult:
    """Mean per-prompt difference B - A with a cluster-robust standard error (pairs holding a
    NaN are dropped with their cluster label)."""
    from statsmodels.regression.linear_model import OLS  # lazy: statsmodels is slow to import

    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    first, second = as_array(a, "arm A"), as_array(b, "arm B")
    labels = np.asarray(clusters.to_numpy() if hasattr(clusters, "to_numpy") else clusters).ravel()
    if not first.size == second.size == labels.size:
        raise AnalysisError(
            "scores and cluster labels need one value per prompt "
            f"({first.size}, {second.size}, {labels.size})"
        )
    keep = ~(np.isnan(first) | np.isnan(second))
    x, y, dropped = pairs(first[keep], second[keep])
    groups = np.unique(labels[keep], return_inverse=True)[1]
    count = int(groups.max()) + 1 if groups.size else 0
    need(x.size, 2, "a clustered difference")
    if count < 2:
        raise AnalysisError("cluster-robust errors need at least two clusters")
    differences = y - x
    fit = OLS(differences, np.ones_like(differences)).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    effect, se = float(fit.params[0]), float(fit.bse[0])
    naive = float(differences.std(ddof=1) / math.sqrt(differences.size))
    df = count - 1
    if se == 0:
        low = high = effect
        p = 1.0 if effect == 0 else 0.0
    else:
        t = effect / se
        if alternative == "two-sided":
            half = stats.t.ppf(0.5 + confidence / 2, df) * se
            p, low, high = float(2 * stats.t.sf(abs(t), df)), effect - half, effect + half
        elif alternative == "greater":
            p, low, high = float(stats.t.sf(t, df)), effect - stats.t.ppf(confidence, df) * se, math.inf
        else:
            p, low, high = float(stats.t.cdf(t, df)), -math.inf, effect + stats.t.ppf(confidence, df) * se
    return TestResult(
        method=f"paired difference, cluster-robust SE ({count} clusters)",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(x.mean()),
        estimate_b=float(y.mean()),
        effect=effect,
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={
            "se": se,
            "naive_se": naive,
            "design_effect": (se / naive) ** 2 if naive else math.nan,
            "clusters": count,
            "dropped_pairs": int((~keep).sum()) + dropped,
        },
        **_names(names),
    )


def paired_bootstrap(a: Any, b: Any, **options: Any) -> TestResult:
    """Paired (per-prompt) bootstrap of the mean difference: `bootstrap_difference(paired=True)`."""
    return bootstrap_difference(a, b, paired=True, **options)


def eval_sample_size(
    difference: float,
    *,
    sd_a: float,
    sd_b: float,
    correlation: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Prompts needed to detect a mean score difference `difference` between two models scored on
    the same prompts (two-sided z-test); for accuracies, sd = sqrt(p (1 - p))."""
    check_alpha(alpha)
    check_alpha(power, "power")
    for name, value in (("difference", difference), ("sd_a", sd_a), ("sd_b", sd_b)):
        if not math.isfinite(value):
            raise AnalysisError(f"{name} must be a finite number (got {value!r})")
    if difference == 0:
        raise AnalysisError("difference must be non-zero: no sample size detects a zero difference")
    if sd_a < 0 or sd_b < 0:
        raise AnalysisError("standard deviations cannot be negative")
    if not -1 <= correlation <= 1:
        raise AnalysisError(f"correlation must lie in [-1, 1] (got {correlation!r})")
    variance = sd_a**2 + sd_b**2 - 2 * correlation * sd_a * sd_b
    if variance <= 0:
        return 1
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(z**2 * variance / difference**2)
