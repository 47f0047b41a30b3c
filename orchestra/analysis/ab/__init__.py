"""A/B statistics for LLM evaluations: paired and independent designs, CIs, multiple comparisons,
power, sample-ratio checks, sequential looks and Bayesian read-outs (scipy/statsmodels inside).

    from orchestra.analysis import ab
    report = ab.ab_report(requests, arm="run_name", unit="prompt")
"""

from orchestra.analysis.ab.bayes import BayesResult, prob_b_beats_a_means, prob_b_beats_a_rates
from orchestra.analysis.ab.means import (
    bootstrap_difference,
    mann_whitney,
    paired_t,
    quantile_interval,
    welch,
    wilcoxon,
)
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.power import minimum_detectable_effect, power, sample_size
from orchestra.analysis.ab.proportions import chi_square, fisher, mcnemar, two_proportion_z
from orchestra.analysis.ab.ratios import quantile_difference, ratio_difference
from orchestra.analysis.ab.report import DEFAULT_METRICS, Metric, ab_report
from orchestra.analysis.ab.result import ABReport, TestResult
from orchestra.analysis.ab.sequential import Look, SequentialTest
from orchestra.analysis.ab.srm import SRMResult, sample_ratio_mismatch

__all__ = [
    "DEFAULT_METRICS",
    "ABReport",
    "BayesResult",
    "Look",
    "Metric",
    "SRMResult",
    "SequentialTest",
    "TestResult",
    "ab_report",
    "adjust",
    "bootstrap_difference",
    "chi_square",
    "fisher",
    "mann_whitney",
    "mcnemar",
    "minimum_detectable_effect",
    "paired_t",
    "power",
    "prob_b_beats_a_means",
    "prob_b_beats_a_rates",
    "quantile_difference",
    "quantile_interval",
    "ratio_difference",
    "sample_ratio_mismatch",
    "sample_size",
    "two_proportion_z",
    "welch",
    "wilcoxon",
]
