"""Relative lift, B / A - 1, the number experimentation platforms report in percent: from raw
values or from aggregates (n, mean, variance; or n, sum, sum of squares; or successes of n).

    relative_lift(scores_a, scores_b)                        # delta-method CI
    relative_lift(scores_a, scores_b, method="fieller")      # Fieller's interval
    relative_lift_from_summary(Summary.from_sums(1000, 212.0, 98.1), Summary(1000, 0.25, 0.19))
    relative_lift_from_counts(120, 1000, 141, 1000)          # conversion rates

Conventions. With arm means m_a, m_b and the variances of those means v_a, v_b (and their
covariance c for paired data), the delta method gives
    Var(m_b / m_a) ~ (v_b - 2 R c + R^2 v_a) / m_a^2,   R = m_b / m_a
(Deng, Knoblich & Lu, 2018, "Applying the Delta Method in Metric Analytics", KDD, section 3.3)
and a normal interval. Fieller's interval (Fieller, 1954, JRSS B 16:175-185) is the set of R
for which (m_b - R m_a)^2 <= z^2 (v_b - 2 R c + R^2 v_a): it is asymmetric and honest when A's
mean is uncertain, and unbounded when A's mean is not significantly different from zero (then
the interval is (-inf, inf) with a warning). Both use normal quantiles (large samples). The
p-value tests lift = 0: the delta method's z = lift / SE, Fieller's the exact pivot at R = 1
(the z-test of the difference). Proportions use the binomial variance p(1 - p) / n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

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
from orchestra.errors import AnalysisError

LiftMethod = Literal["delta", "fieller"]


@dataclass(frozen=True)
class Summary:
    """One arm's aggregates: n, mean and the variance of one observation (ddof=1).

    Summary(1000, 0.212, 0.167) · Summary.from_sums(n, total, total_of_squares) ·
    Summary.from_proportion(successes, n) · Summary.from_values(array)
    """

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if not isinstance(self.n, int | np.integer) or self.n < 2:
            raise AnalysisError(f"a summary needs n >= 2 observations (got {self.n!r})")
        if not (math.isfinite(self.mean) and math.isfinite(self.variance)):
            raise AnalysisError(f"mean and variance must be finite (got {self.mean!r}, {self.variance!r})")
        if self.variance < 0:
            raise AnalysisError(f"a variance cannot be negative (got {self.variance!r})")

    @property
    def se2(self) -> float:
        """The variance of the mean."""
        return self.variance / self.n

    @classmethod
    def from_sums(cls, n: int, total: float, total_of_squares: float) -> Summary:
        """From n, the sum and the sum of squares (what SQL aggregates give)."""
        if not isinstance(n, int | np.integer) or n < 2:
            raise AnalysisError(f"a summary needs n >= 2 observations (got {n!r})")
        centred = total_of_squares - total**2 / n
        if centred < -1e-9 * max(abs(total_of_squares), 1.0):
            raise AnalysisError(
                f"sum of squares {total_of_squares!r} is below sum^2 / n = {total**2 / n!r}: "
                "inconsistent aggregates"
            )
        return cls(int(n), total / n, max(centred, 0.0) / (n - 1))

    @classmethod
    def from_proportion(cls, successes: int, n: int) -> Summary:
        """Successes of n trials; the variance is the binomial p(1 - p)."""
        if not isinstance(n, int | np.integer) or not isinstance(successes, int | np.integer):
            raise AnalysisError("successes and n must be whole numbers")
        if n < 2 or not 0 <= successes <= n:
            raise AnalysisError(f"need n >= 2 and 0 <= successes <= n (got {successes} of {n})")
        rate = successes / n
        return cls(int(n), rate, rate * (1 - rate))

    @classmethod
    def from_values(cls, data: Any, nan_policy: NanPolicy = "drop") -> Summary:
        array, _ = values(data, "values", nan_policy)
        need(array.size, 2, "a summary")
        return cls(int(array.size), float(array.mean()), float(array.var(ddof=1)))


def relative_lift_from_summary(
    a: Summary,
    b: Summary,
    *,
    method: LiftMethod = "delta",
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
    covariance: float = 0.0,
    **names: Any,
) -> TestResult:
    """Relative lift mean(B) / mean(A) - 1 of two summarised arms (independent unless the
    covariance of the two means is given). See the module docstring for the conventions."""
    return _lift(a.mean, b.mean, a.se2, b.se2, covariance, a.n, b.n, method, confidence, alternative, names)


def relative_lift_from_counts(
    successes_a: int, n_a: int, successes_b: int, n_b: int, **options: Any
) -> TestResult:
    """Relative lift of two rates, rate(B) / rate(A) - 1, from success counts."""
    return relative_lift_from_summary(
        Summary.from_proportion(successes_a, n_a), Summary.from_proportion(successes_b, n_b), **options
    )


def relative_lift(
    a: Any,
    b: Any,
    *,
    paired: bool = False,
    method: LiftMethod = "delta",
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Relative lift mean(B) / mean(A) - 1 from per-unit values (0/1 values give rates); a
    paired design (the same prompts in both arms) keeps the covariance between arms."""
    if paired:
        x, y, _ = pairs(a, b, nan_policy)
        need(x.size, 2, "a paired relative lift")
        covariance = float(np.cov(x, y)[0, 1]) / x.size
    else:
        x, _ = values(a, "arm A", nan_policy)
        y, _ = values(b, "arm B", nan_policy)
        need(min(x.size, y.size), 2, "a relative lift")
        covariance = 0.0
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    return _lift(
        float(x.mean()),
        float(y.mean()),
        va,
        vb,
        covariance,
        x.size,
        y.size,
        method,
        confidence,
        alternative,
        names,
    )


def lift_and_se(
    mean_a: float, mean_b: float, va: float, vb: float, covariance: float = 0.0
) -> tuple[float, float]:
    """(lift, delta-method standard error) for arm means and the variances of those means."""
    if mean_a == 0:
        raise AnalysisError("the relative lift is undefined when arm A's mean is zero")
    ratio = mean_b / mean_a
    variance = (vb - 2 * ratio * covariance + ratio**2 * va) / mean_a**2
    return ratio - 1, math.sqrt(max(variance, 0.0))


def _lift(
    mean_a: float,
    mean_b: float,
    va: float,
    vb: float,
    covariance: float,
    n_a: int,
    n_b: int,
    method: str,
    confidence: float,
    alternative: str,
    names: dict[str, Any],
) -> TestResult:
    confidence = check_confidence(confidence)
    alternative = check_alternative(alternative)
    if method not in ("delta", "fieller"):
        raise AnalysisError(f"method must be 'delta' or 'fieller' (got {method!r})")
    lift, se = lift_and_se(mean_a, mean_b, va, vb, covariance)
    warnings: tuple[str, ...] = ()
    if method == "delta":
        p, low, high = z_interval(lift, se, confidence, alternative)
        label = "relative lift (delta method)"
    else:
        difference_se = math.sqrt(max(va + vb - 2 * covariance, 0.0))
        p, _, _ = z_interval(mean_b - mean_a, difference_se, confidence, alternative)
        low, high, bounded = fieller_interval(mean_a, mean_b, va, vb, covariance, confidence, alternative)
        low, high = low - 1, high - 1
        label = "relative lift (Fieller)"
        if not bounded:
            warnings = ("arm A's mean is not clearly different from zero: Fieller's interval is unbounded",)
    return TestResult(
        metric=names.get("metric", "metric"),
        method=label,
        arm_a=names.get("arm_a", "A"),
        arm_b=names.get("arm_b", "B"),
        n_a=int(n_a),
        n_b=int(n_b),
        estimate_a=mean_a,
        estimate_b=mean_b,
        effect=lift,
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        effect_kind="relative lift",
        confidence=confidence,
        alternative=alternative,
        details={"se": se, "covariance": covariance},
        warnings=warnings,
    )


def fieller_interval(
    mean_a: float,
    mean_b: float,
    va: float,
    vb: float,
    covariance: float = 0.0,
    confidence: float = 0.95,
    alternative: str = "two-sided",
) -> tuple[float, float, bool]:
    """(low, high, bounded) Fieller interval of the ratio mean_b / mean_a.

    Solves (m_b - R m_a)^2 = z^2 (v_b - 2 R c + R^2 v_a) for R. When m_a^2 <= z^2 v_a the set is
    not a finite interval: (-inf, inf) is returned with bounded=False.
    """
    tail = (1 - confidence) / 2 if alternative == "two-sided" else 1 - confidence
    z2 = stats.norm.ppf(1 - tail) ** 2
    a = mean_a**2 - z2 * va
    half_b = mean_a * mean_b - z2 * covariance
    c = mean_b**2 - z2 * vb
    discriminant = half_b**2 - a * c
    if a <= 0 or discriminant < 0:
        return -math.inf, math.inf, False
    root = math.sqrt(discriminant)
    low, high = (half_b - root) / a, (half_b + root) / a
    if alternative == "greater":
        return low, math.inf, True
    if alternative == "less":
        return -math.inf, high, True
    return low, high, True
