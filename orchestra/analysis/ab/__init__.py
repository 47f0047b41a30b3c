"""A/B statistics for LLM evaluations: paired and independent designs, CIs, relative lift,
k-sample tests, multiple comparisons, power, sample-ratio checks, group-sequential designs and
always-valid monitoring, permutation tests, CUPED, heterogeneous effects, Bayesian read-outs,
error bars for evals and prediction-powered inference (scipy/statsmodels inside).

    from orchestra.analysis import ab
    report = ab.ab_report(requests, arm="run_name", unit="prompt")
"""

from orchestra.analysis.ab.bayes import (
    BayesResult,
    lift_posterior,
    prob_b_beats_a_means,
    prob_b_beats_a_rates,
)
from orchestra.analysis.ab.cuped import cuped, regression_adjustment
from orchestra.analysis.ab.evals import clustered_difference, eval_sample_size, paired_bootstrap
from orchestra.analysis.ab.group_sequential import (
    Crossing,
    GroupSequentialDesign,
    alpha_spending,
    obrien_fleming,
    pocock,
)
from orchestra.analysis.ab.ksample import (
    KSampleResult,
    chi_square_independence,
    equal_proportions,
    kruskal_wallis,
    many_to_one,
)
from orchestra.analysis.ab.lift import (
    Summary,
    fieller_interval,
    relative_lift,
    relative_lift_from_counts,
    relative_lift_from_summary,
)
from orchestra.analysis.ab.lift_sequence import LiftSequence
from orchestra.analysis.ab.means import (
    bootstrap_difference,
    mann_whitney,
    order_statistic_interval,
    paired_t,
    quantile_interval,
    student_t,
    t_test,
    welch,
    wilcoxon,
)
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.permutation import permutation_test
from orchestra.analysis.ab.power import minimum_detectable_effect, power, sample_size
from orchestra.analysis.ab.ppi import PPIResult, ppi_difference, ppi_mean
from orchestra.analysis.ab.proportions import chi_square, fisher, mcnemar, two_proportion_z
from orchestra.analysis.ab.ratios import quantile_difference, ratio_difference
from orchestra.analysis.ab.report import DEFAULT_METRICS, Metric, ab_report
from orchestra.analysis.ab.result import ABReport, TestResult
from orchestra.analysis.ab.segments import interaction_test, segment_effects
from orchestra.analysis.ab.sequential import Look, SequentialTest
from orchestra.analysis.ab.srm import SRMResult, sample_ratio_mismatch

__all__ = [
    "DEFAULT_METRICS",
    "ABReport",
    "BayesResult",
    "Crossing",
    "GroupSequentialDesign",
    "KSampleResult",
    "LiftSequence",
    "Look",
    "Metric",
    "PPIResult",
    "SRMResult",
    "SequentialTest",
    "Summary",
    "TestResult",
    "ab_report",
    "adjust",
    "alpha_spending",
    "bootstrap_difference",
    "chi_square",
    "chi_square_independence",
    "clustered_difference",
    "cuped",
    "equal_proportions",
    "eval_sample_size",
    "fieller_interval",
    "fisher",
    "interaction_test",
    "kruskal_wallis",
    "lift_posterior",
    "mann_whitney",
    "many_to_one",
    "mcnemar",
    "minimum_detectable_effect",
    "obrien_fleming",
    "order_statistic_interval",
    "paired_bootstrap",
    "paired_t",
    "permutation_test",
    "pocock",
    "power",
    "ppi_difference",
    "ppi_mean",
    "prob_b_beats_a_means",
    "prob_b_beats_a_rates",
    "quantile_difference",
    "quantile_interval",
    "ratio_difference",
    "regression_adjustment",
    "relative_lift",
    "relative_lift_from_counts",
    "relative_lift_from_summary",
    "sample_ratio_mismatch",
    "sample_size",
    "segment_effects",
    "student_t",
    "t_test",
    "two_proportion_z",
    "welch",
    "wilcoxon",
]
