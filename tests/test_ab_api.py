"""The public names of `orchestra.analysis.ab`, locked: adding or removing one is a decision."""

from __future__ import annotations

from orchestra.analysis import ab

PUBLIC = {
    "DEFAULT_METRICS", "ABReport", "BayesResult", "Crossing", "GroupSequentialDesign", "KSampleResult",
    "LiftSequence", "Look", "Metric", "PPIResult", "SRMResult", "SequentialTest", "Summary", "TestResult",
    "ab_report", "adjust", "alpha_spending", "bootstrap_difference", "chi_square", "chi_square_independence",
    "clustered_difference", "cuped", "equal_proportions", "eval_sample_size", "fieller_interval", "fisher",
    "interaction_test", "kruskal_wallis", "lift_posterior", "mann_whitney", "many_to_one", "mcnemar",
    "minimum_detectable_effect", "obrien_fleming", "order_statistic_interval", "paired_bootstrap", "paired_t",
    "permutation_test", "pocock", "power", "ppi_difference", "ppi_mean", "prob_b_beats_a_means",
    "prob_b_beats_a_rates", "quantile_difference", "quantile_interval", "ratio_difference",
    "regression_adjustment", "relative_lift", "relative_lift_from_counts", "relative_lift_from_summary",
    "sample_ratio_mismatch", "sample_size", "segment_effects", "student_t", "t_test", "two_proportion_z",
    "welch", "wilcoxon",
}  # fmt: skip


def test_ab_public_names_are_locked():
    assert set(ab.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(ab, name) is not None, name
    assert all(getattr(ab, name).__doc__ for name in PUBLIC if callable(getattr(ab, name)))
