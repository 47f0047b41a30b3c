"""More than two arms at once: equal proportions across k arms, chi-square independence on an
r x c table, Kruskal-Wallis, and many arms against one control (Dunnett, Holm or BH). scipy
underneath (`chi2_contingency`, `kruskal`, `dunnett`).

    equal_proportions([83, 90, 129, 70], [86, 93, 136, 82])     # R's prop.test on k groups
    chi_square_independence([[762, 327, 468], [484, 239, 477]])
    kruskal_wallis(scores_a, scores_b, scores_c)
    many_to_one(control, {"B": scores_b, "C": scores_c}, method="dunnett")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import (
    Alternative,
    NanPolicy,
    check_alternative,
    check_confidence,
    need,
    values,
)
from orchestra.analysis.ab.means import welch
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class KSampleResult:
    """An omnibus test over k arms: statistic, degrees of freedom, p-value and any warning."""

    method: str
    statistic: float
    df: float
    p_value: float
    details: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    @property
    def verdict(self) -> str:
        warning = "".join(f" Warning: {w}." for w in self.warnings)
        return (
            f"{self.method}: statistic {self.statistic:.4g}, df {self.df:g}, p={self.p_value:.3g}.{warning}"
        )


def _table(table: Any) -> np.ndarray:
    array = np.asarray(table, dtype=float)
    if array.ndim != 2 or min(array.shape) < 2:
        raise AnalysisError(
            f"a contingency table needs at least 2 rows and 2 columns (got shape {array.shape})"
        )
    if not np.isfinite(array).all() or (array < 0).any() or (array != np.round(array)).any():
        raise AnalysisError("a contingency table holds non-negative whole counts")
    if (array.sum(axis=0) == 0).any() or (array.sum(axis=1) == 0).any():
        raise AnalysisError("a row or column of the table is all zero: drop it first")
    return array


def chi_square_independence(table: Any, *, correction: bool = True) -> KSampleResult:
    """Pearson's chi-square test of independence on an r x c table of counts.

    Yates' continuity correction applies only to 2 x 2 tables (as R's `chisq.test` and scipy's
    `chi2_contingency` do). Expected counts are checked against Cochran's rule (all >= 1 and at
    most 20% below 5); when it fails the result carries a warning that the approximation may be
    poor (use Fisher's exact test on 2 x 2 tables).
    """
    array = _table(table)
    result = stats.chi2_contingency(array, correction=correction)
    expected = result.expected_freq
    small = float((expected < 5).mean())
    warnings: tuple[str, ...] = ()
    if expected.min() < 1 or small > 0.2:
        warnings = (
            f"{small:.0%} of expected counts are below 5 (smallest {expected.min():.3g}): "
            "the chi-square approximation may be poor",
        )
    return KSampleResult(
        method="Pearson's chi-square test of independence",
        statistic=float(result.statistic),
        df=float(result.dof),
        p_value=float(result.pvalue),
        details={"expected": expected.tolist()},
        warnings=warnings,
    )


def equal_proportions(successes: Any, trials: Any) -> KSampleResult:
    """Chi-square test that k >= 2 arms share one success rate (R's `prop.test(x, n)`: Yates'
    correction only when k = 2)."""
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    if s.ndim != 1 or s.shape != n.shape or s.size < 2:
        raise AnalysisError("equal_proportions needs two equally long lists of successes and trials, k >= 2")
    if (n <= 0).any() or (s < 0).any() or (s > n).any():
        raise AnalysisError("each arm needs trials > 0 and 0 <= successes <= trials")
    if s.sum() in (0, n.sum()):
        raise AnalysisError("every trial has the same outcome in every arm: there is nothing to compare")
    result = chi_square_independence(np.column_stack([s, n - s]))
    return KSampleResult(
        f"chi-square test of equal proportions across {s.size} arms",
        result.statistic,
        result.df,
        result.p_value,
        {"rates": (s / n).tolist(), **result.details},
        result.warnings,
    )


def kruskal_wallis(*groups: Any, nan_policy: NanPolicy = "drop") -> KSampleResult:
    """Kruskal-Wallis H test (tie-corrected, chi-square approximation), `scipy.stats.kruskal`."""
    if len(groups) < 2:
        raise AnalysisError("Kruskal-Wallis needs at least two groups")
    arrays = [values(g, f"group {i + 1}", nan_policy)[0] for i, g in enumerate(groups)]
    for array in arrays:
        need(array.size, 1, "Kruskal-Wallis")
    pooled = np.concatenate(arrays)
    if np.all(pooled == pooled[0]):
        raise AnalysisError("every value is identical: Kruskal-Wallis has nothing to rank")
    result = stats.kruskal(*arrays)
    warnings: tuple[str, ...] = ()
    if min(a.size for a in arrays) < 5:
        warnings = ("a group has fewer than 5 values: the chi-square approximation is rough",)
    return KSampleResult(
        "Kruskal-Wallis rank sum test",
        float(result.statistic),
        float(len(arrays) - 1),
        float(result.pvalue),
        {"sizes": [a.size for a in arrays]},
        warnings,
    )


def many_to_one(
    control: Any,
    treatments: Mapping[str, Any],
    *,
    method: Literal["dunnett", "holm", "bh"] = "dunnett",
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    seed: int = 0,
    metric: str = "metric",
    control_name: str = "control",
) -> list[TestResult]:
    """Every treatment against one control, the family-wise error controlled.

    `dunnett`: Dunnett's (1955) single-step test with simultaneous intervals (`scipy.stats.dunnett`,
    a pooled variance across all arms, assuming normal data with equal variances; its
    multivariate-t integral is quasi-Monte Carlo, seeded). `holm` / `bh`: Welch's t-test per
    treatment, then Holm's step-down (family-wise) or Benjamini-Hochberg (false discovery rate)
    adjustment; their intervals are unadjusted.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    if not treatments:
        raise AnalysisError("many_to_one needs at least one treatment arm")
    if method not in ("dunnett", "holm", "bh"):
        raise AnalysisError(f"method must be 'dunnett', 'holm' or 'bh' (got {method!r})")
    if method != "dunnett":
        results = [
            welch(
                control,
                data,
                alternative=alternative,
                confidence=confidence,
                metric=metric,
                arm_a=control_name,
                arm_b=name,
            )
            for name, data in treatments.items()
        ]
        return adjust(results, method)
    base, _ = values(control, control_name)
    arms = {name: values(data, name)[0] for name, data in treatments.items()}
    need(min([base.size, *(a.size for a in arms.values())]), 2, "Dunnett's test")
    result = stats.dunnett(
        *arms.values(), control=base, alternative=alternative, rng=np.random.default_rng(seed)
    )
    interval = result.confidence_interval(confidence_level=confidence)
    return [
        TestResult(
            metric=metric,
            method="Dunnett's test",
            arm_a=control_name,
            arm_b=name,
            n_a=base.size,
            n_b=data.size,
            estimate_a=float(base.mean()),
            estimate_b=float(data.mean()),
            effect=float(data.mean() - base.mean()),
            ci_low=float(interval.low[i]),
            ci_high=float(interval.high[i]),
            p_value=float(result.pvalue[i]),
            p_adjusted=float(result.pvalue[i]),
            adjustment="dunnett",
            confidence=confidence,
            alternative=alternative,
            details={"t": float(result.statistic[i])},
        )
        for i, (name, data) in enumerate(arms.items())
    ]
