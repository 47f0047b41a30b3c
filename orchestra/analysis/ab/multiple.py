"""Several arms or metrics at once: Holm (family-wise error) or Benjamini-Hochberg (false
discovery rate) adjusted p-values, through statsmodels.

    adjusted = adjust(results, method="holm")
"""

from __future__ import annotations

from statsmodels.stats.multitest import multipletests

from orchestra.analysis.ab.result import TestResult

METHODS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni"}


def adjust(results: list[TestResult], method: str = "holm") -> list[TestResult]:
    """The same results with `p_adjusted` set; results without a p-value are left as they are."""
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r}; available: {', '.join(METHODS)}")
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    if not tested:
        return list(results)
    _, corrected, _, _ = multipletests([results[i].p_value for i in tested], method=METHODS[method])
    adjusted = list(results)
    for index, p in zip(tested, corrected, strict=True):
        adjusted[index] = results[index].adjusted(float(p), method)
    return adjusted
