"""Several arms or metrics at once: Holm (family-wise error) or Benjamini-Hochberg (false
discovery rate) adjusted p-values, through statsmodels' `multipletests`. For many arms against
one control with normal data, `dunnett` (in `ksample`) is sharper than Holm.

    adjusted = adjust(results, method="holm")
"""

from __future__ import annotations

from statsmodels.stats.multitest import multipletests

from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError

METHODS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni"}


def adjust(results: list[TestResult], method: str = "holm") -> list[TestResult]:
    """The same results with `p_adjusted` set; results without a p-value (or not computable) are
    left as they are. p-values must lie in [0, 1]."""
    if method not in METHODS:
        raise AnalysisError(f"unknown correction {method!r}; available: {', '.join(METHODS)}")
    tested = [i for i, r in enumerate(results) if r.p_value is not None and r.computable]
    bad = [results[i].p_value for i in tested if not 0 <= results[i].p_value <= 1]  # NaN fails too
    if bad:
        raise AnalysisError(f"p-values must lie in [0, 1]; got {bad[:5]}")
    if not tested:
        return list(results)
    _, corrected, _, _ = multipletests([results[i].p_value for i in tested], method=METHODS[method])
    adjusted = list(results)
    for index, p in zip(tested, corrected, strict=True):
        adjusted[index] = results[index].adjusted(float(p), method)
    return adjusted
