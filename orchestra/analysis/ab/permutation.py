"""Permutation tests of B against A for a difference in means or any statistic: exact when the
number of distinct rearrangements is small, seeded Monte Carlo otherwise (`scipy.stats.
permutation_test` underneath).

    permutation_test(scores_a, scores_b)                           # mean difference
    permutation_test(a, b, statistic=np.median, alternative="greater")
    permutation_test(a, b, paired=True)                            # sign flips within pairs

Conventions: independent arms are relabelled (all C(n_a + n_b, n_a) splits); paired arms swap
within pairs (2^n sign flips of the differences). If that count is at most `resamples` the test
is exact; otherwise `resamples` random rearrangements are drawn and p = (k + 1) / (resamples + 1),
which never under-states p (Phipson & Smyth, 2010). There is no confidence interval (NaN): use
`bootstrap_difference` for one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import Alternative, NanPolicy, check_alternative, need, pairs, values
from orchestra.analysis.ab.means import _names
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError


def permutation_test(
    a: Any,
    b: Any,
    *,
    statistic: Callable[..., Any] = np.mean,
    paired: bool = False,
    alternative: Alternative = "two-sided",
    resamples: int = 9_999,
    seed: int = 0,
    nan_policy: NanPolicy = "drop",
    **names: Any,
) -> TestResult:
    """Permutation test of statistic(B) - statistic(A); `statistic` must accept `axis=`."""
    alternative = check_alternative(alternative)
    if not isinstance(resamples, int) or resamples < 99:
        raise AnalysisError(f"use at least 99 resamples (got {resamples!r})")
    if paired:
        x, y, dropped = pairs(a, b, nan_policy)
        need(x.size, 1, "a paired permutation test")
        count = 2**x.size
    else:
        x, dropped_a = values(a, "arm A", nan_policy)
        y, dropped_b = values(b, "arm B", nan_policy)
        need(min(x.size, y.size), 1, "a permutation test")
        dropped = dropped_a + dropped_b
        count = math.comb(x.size + y.size, x.size)

    def difference(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(second, axis=axis) - statistic(first, axis=axis)

    exact = count <= resamples
    result = stats.permutation_test(
        (x, y),
        difference,
        permutation_type="samples" if paired else "independent",
        vectorized=True,
        n_resamples=resamples,
        alternative=alternative,
        rng=np.random.default_rng(seed),
    )
    label = f"{'exact' if exact else 'Monte Carlo'} {'paired ' if paired else ''}permutation test"
    return TestResult(
        method=f"{label} of the {getattr(statistic, '__name__', 'statistic')} difference",
        n_a=x.size,
        n_b=y.size,
        estimate_a=float(statistic(x)),
        estimate_b=float(statistic(y)),
        effect=float(difference(x, y)),
        ci_low=math.nan,
        ci_high=math.nan,
        p_value=float(result.pvalue),
        alternative=alternative,
        details={
            "exact": exact,
            "rearrangements": count if exact else resamples,
            "seed": seed,
            "dropped": dropped,
        },
        **_names(names),
    )
