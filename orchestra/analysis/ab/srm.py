"""Sample-ratio mismatch: did a randomised split send the share of traffic it should have?

check = sample_ratio_mismatch({"A": 5_130, "B": 4_870})             # expected 50/50
check.mismatch   # True when p < 0.001 (the threshold commonly used for SRM)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class SRMResult:
    counts: dict[str, int]
    expected_shares: dict[str, float]
    chi2: float
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    @property
    def verdict(self) -> str:
        observed = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        if self.mismatch:
            return (
                f"Sample ratio mismatch (p={self.p_value:.2g}): {observed}; "
                "check the randomisation before trusting results."
            )
        return f"No sample ratio mismatch (p={self.p_value:.2g}): {observed}."


def sample_ratio_mismatch(
    counts: dict[str, int], expected: dict[str, float] | None = None, *, threshold: float = 0.001
) -> SRMResult:
    """Chi-square goodness of fit (Pearson, no continuity correction: `scipy.stats.chisquare`) of
    the arm counts against the intended shares (default: equal). Counts must be non-negative
    whole numbers with at least one unit in total."""
    if len(counts) < 2:
        raise AnalysisError("a sample-ratio check needs at least two arms")
    for arm, count in counts.items():
        if not isinstance(count, int | np.integer | float) or not np.isfinite(count) or count < 0:
            raise AnalysisError(f"arm {arm!r} has count {count!r}; counts must be non-negative numbers")
        if count != int(count):
            raise AnalysisError(f"arm {arm!r} has count {count!r}; counts must be whole numbers")
    if sum(counts.values()) == 0:
        raise AnalysisError("every arm has a count of zero: there is no traffic to check")
    arms = list(counts)
    shares = expected or {arm: 1.0 for arm in arms}
    if set(shares) != set(arms) or any(not (np.isfinite(v) and v > 0) for v in shares.values()):
        raise AnalysisError("expected shares must be positive and name exactly the arms counted")
    observed = np.array([counts[a] for a in arms], dtype=float)
    weights = np.array([shares[a] for a in arms], dtype=float)
    expected_counts = observed.sum() * weights / weights.sum()
    result = stats.chisquare(observed, expected_counts)
    normalised = {a: float(w) for a, w in zip(arms, weights / weights.sum(), strict=True)}
    return SRMResult(dict(counts), normalised, float(result.statistic), float(result.pvalue), threshold)
