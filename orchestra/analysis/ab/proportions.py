"""Binary metrics (success, win): two-proportion z-test, chi-square, Fisher's exact; McNemar for
paired designs. statsmodels and scipy underneath.

    two_proportion_z(success_a, success_b)   # arrays of 0/1 (or booleans)
    mcnemar(success_a, success_b)            # the same prompts in both arms
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from orchestra.analysis.ab._data import (
    Alternative,
    NanPolicy,
    binary,
    check_alternative,
    check_confidence,
    need,
    pairs,
    values,
    z_interval,
)
from orchestra.analysis.ab.means import _names
from orchestra.analysis.ab.result import TestResult


def _counts(a: Any, b: Any, nan_policy: NanPolicy) -> tuple[int, int, int, int, dict]:
    x, dropped_a = values(a, "arm A", nan_policy)
    y, dropped_b = values(b, "arm B", nan_policy)
    binary(x, "arm A"), binary(y, "arm B")
    need(min(x.size, y.size), 1, "a test of proportions")
    return int(x.sum()), x.size, int(y.sum()), y.size, {"dropped_a": dropped_a, "dropped_b": dropped_b}


def _rate_difference(
    method: str,
    counts: tuple[int, int, int, int],
    p: float,
    confidence: float,
    details: dict,
    names: dict,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Effect = rate(B) - rate(A), with Newcombe's hybrid score interval (one-sided: the matching
    end of the 1 - 2 alpha two-sided interval, the other end at the bound of the parameter, -1 or 1)."""
    s_a, n_a, s_b, n_b = counts
    two_sided_alpha = 1 - confidence if alternative == "two-sided" else 2 * (1 - confidence)
    low, high = confint_proportions_2indep(s_b, n_b, s_a, n_a, method="newcomb", alpha=two_sided_alpha)
    if alternative == "greater":
        high = 1.0
    elif alternative == "less":
        low = -1.0
    return TestResult(
        method=method,
        n_a=n_a,
        n_b=n_b,
        estimate_a=s_a / n_a,
        estimate_b=s_b / n_b,
        effect=s_b / n_b - s_a / n_a,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(p),
        confidence=confidence,
        alternative=alternative,
        details=details,
        **_names(names),
    )


def two_proportion_z(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Pooled two-proportion z-test without continuity correction (`proportions_ztest`, as R's
    `prop.test(correct=FALSE)`); Newcombe's hybrid score interval for the difference.
    "greater" means rate(B) > rate(A)."""
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    s_a, n_a, s_b, n_b, details = _counts(a, b, nan_policy)
    pooled = (s_a + s_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        p = 1.0  # identical, degenerate rates (all failures or all successes): no evidence of a difference
        details["note"] = "every observation is the same in both arms"
    else:
        sides = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
        _, p = proportions_ztest([s_b, s_a], [n_b, n_a], alternative=sides)
    return _rate_difference(
        "two-proportion z-test", (s_a, n_a, s_b, n_b), p, confidence, details, names, alternative
    )


def chi_square(
    a: Any, b: Any, *, confidence: float = 0.95, nan_policy: NanPolicy = "drop", **names: Any
) -> TestResult:
    """Pearson's chi-square on the 2x2 table (Yates' continuity correction, as scipy and R's
    `chisq.test` apply it); Newcombe's interval for the difference. Two-sided only."""
    confidence = check_confidence(confidence)
    s_a, n_a, s_b, n_b, details = _counts(a, b, nan_policy)
    table = np.array([[s_a, n_a - s_a], [s_b, n_b - s_b]])
    if (table.sum(axis=0) == 0).any():
        p = 1.0
        details["note"] = "a column of the table is empty: every observation is the same"
    else:
        result = stats.chi2_contingency(table)
        p = float(result.pvalue)
        details["chi2"] = float(result.statistic)
    return _rate_difference("chi-square test", (s_a, n_a, s_b, n_b), p, confidence, details, names)


def fisher(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Fisher's exact test; effect = the conditional maximum-likelihood odds ratio (odds of success
    in B over A, as R's `fisher.test`) with its exact conditional interval. "greater": B's odds
    are higher. When no arm has a failure (or none a success) the odds ratio is undefined:
    the effect is NaN, the interval [0, inf] and a warning says why.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    s_a, n_a, s_b, n_b, details = _counts(a, b, nan_policy)
    table = np.array([[s_b, n_b - s_b], [s_a, n_a - s_a]])
    p = float(stats.fisher_exact(table, alternative=alternative).pvalue)
    warnings: tuple[str, ...] = ()
    if (table.sum(axis=0) == 0).any():
        effect, low, high = float("nan"), 0.0, float("inf")
        warnings = ("every observation in both arms has the same outcome: the odds ratio is undefined",)
    else:
        odds = stats.contingency.odds_ratio(table, kind="conditional")
        interval = odds.confidence_interval(confidence_level=confidence, alternative=alternative)
        effect, low, high = float(odds.statistic), float(interval.low), float(interval.high)
    return TestResult(
        method="Fisher's exact test",
        n_a=n_a,
        n_b=n_b,
        estimate_a=s_a / n_a,
        estimate_b=s_b / n_b,
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        effect_kind="odds_ratio",
        confidence=confidence,
        alternative=alternative,
        details=details,
        warnings=warnings,
        **_names(names),
    )


def mcnemar(
    a: Any,
    b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """McNemar's test on paired binary outcomes (exact binomial when fewer than 25 discordant pairs).

    Effect = p(B) - p(A) with the Wald interval for paired proportions (Agresti, 2002, 10.1).
    One-sided alternatives ("greater": B succeeds more often) use the exact binomial test of the
    discordant pairs (`scipy.stats.binomtest`) and a one-sided Wald bound.
    The Wald interval has zero width when there is no discordant pair or every pair is
    discordant the same way; the result then carries a warning.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    x, y, dropped = pairs(a, b, nan_policy)
    binary(x, "arm A"), binary(y, "arm B")
    need(x.size, 1, "McNemar's test")
    n = x.size
    only_a = int(((x == 1) & (y == 0)).sum())
    only_b = int(((x == 0) & (y == 1)).sum())
    table = np.array([[int(((x == 1) & (y == 1)).sum()), only_a], [only_b, int(((x == 0) & (y == 0)).sum())]])
    discordant = only_a + only_b
    if discordant == 0:
        p = 1.0
    elif alternative == "two-sided":
        p = float(sm_mcnemar(table, exact=discordant < 25).pvalue)
    else:
        p = float(stats.binomtest(only_b, discordant, 0.5, alternative=alternative).pvalue)
    effect = (only_b - only_a) / n
    se = float(np.sqrt(max(discordant - (only_b - only_a) ** 2 / n, 0.0)) / n)
    _, low, high = z_interval(effect, se, confidence, alternative)
    warnings: tuple[str, ...] = ()
    if se == 0:
        warnings = (
            f"the Wald interval has zero width ({discordant} discordant pair(s) of {n}, "
            f"{only_a} favouring A and {only_b} favouring B): it does not reflect the uncertainty",
        )
    return TestResult(
        method="McNemar's test",
        n_a=n,
        n_b=n,
        estimate_a=float(x.mean()),
        estimate_b=float(y.mean()),
        effect=float(effect),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={"only_a": only_a, "only_b": only_b, "dropped_pairs": dropped},
        warnings=warnings,
        **_names(names),
    )
