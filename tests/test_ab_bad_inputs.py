"""Inputs that must never give a silent wrong number: each gives an AnalysisError or a documented,
flagged result. Property-based (hypothesis) over the input space, plus the cases of issue 13."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra.analysis import ab, win_rate
from orchestra.errors import AnalysisError

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=0, max_size=12)
anything = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=12)


def _sane(result: ab.TestResult) -> None:
    """A result either is computable with ordered finite-or-open bounds and a p-value in [0, 1]."""
    assert result.p_value is None or 0.0 <= result.p_value <= 1.0
    assert not math.isnan(result.effect)
    assert result.ci_low <= result.effect + 1e-9 * max(1.0, abs(result.effect))
    assert result.effect <= result.ci_high + 1e-9 * max(1.0, abs(result.effect))


@PROPERTY
@given(anything, anything, st.sampled_from(["two-sided", "less", "greater"]))
def test_two_sample_tests_never_return_a_silent_nan(a, b, alternative):
    for test in (ab.welch, ab.student_t, ab.mann_whitney):
        try:
            result = test(a, b, alternative=alternative)
        except AnalysisError:
            continue
        _sane(result)


@PROPERTY
@given(st.lists(st.tuples(finite, finite), min_size=0, max_size=12))
def test_paired_tests_never_return_a_silent_nan(pairs):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    for test in (ab.paired_t, ab.wilcoxon):
        try:
            result = test(a, b)
        except AnalysisError:
            continue
        _sane(result)
        assert 0 < result.confidence <= 0.95


@PROPERTY
@given(st.lists(st.integers(0, 1), max_size=15), st.lists(st.integers(0, 1), max_size=15))
def test_binary_tests_are_sane_or_refuse(a, b):
    for test in (ab.two_proportion_z, ab.chi_square, ab.fisher):
        try:
            result = test(a, b)
        except AnalysisError:
            continue
        assert 0.0 <= result.p_value <= 1.0
        if math.isnan(result.effect):
            assert result.warnings  # Fisher's undefined odds ratio says so


@PROPERTY
@given(anything, anything)
def test_bayesian_means_refuse_tiny_or_nan_arms(a, b):
    try:
        result = ab.prob_b_beats_a_means(a, b)
    except AnalysisError:
        return
    assert 0.0 <= result.prob_b_better <= 1.0
    assert not math.isnan(result.expected_loss_b) and not math.isnan(result.credible_low)


@PROPERTY
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8))
def test_adjust_refuses_p_values_outside_the_unit_interval(ps):
    base = ab.welch([1.0, 2.0, 3.0], [2.0, 3.0, 5.0])
    results = [base.__class__(**{**base.__dict__, "p_value": p}) for p in ps]
    try:
        adjusted = ab.adjust(results, "holm")
    except AnalysisError:
        assert any(not 0 <= p <= 1 for p in ps)
        return
    assert all(0 <= r.p_adjusted <= 1 for r in adjusted)


@PROPERTY
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True))
def test_power_and_sample_size_refuse_impossible_settings(n, alpha):
    try:
        value = ab.power(n, 0.3, sd=1.0, alpha=alpha)
    except AnalysisError as err:  # invalid settings, or valid ones the formula cannot resolve
        assert not (math.isfinite(n) and n >= 2 and 0 < alpha < 1) or "not computable" in err.message
        return
    assert 0.0 <= value <= 1.0


@PROPERTY
@given(st.dictionaries(st.sampled_from("ABCD"), st.integers(-5, 50), min_size=2))
def test_sample_ratio_mismatch_refuses_negative_or_empty_counts(counts):
    try:
        check = ab.sample_ratio_mismatch(counts)
    except AnalysisError:
        assert any(c < 0 for c in counts.values()) or sum(counts.values()) == 0
        return
    assert 0.0 <= check.p_value <= 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ab.prob_b_beats_a_means([], []), "at least 2"),
        (lambda: ab.prob_b_beats_a_means([np.nan, np.nan], [1.0, 2.0]), "at least 2"),
        (lambda: ab.prob_b_beats_a_means([1.0], [2.0, 3.0]), "at least 2"),
        (lambda: ab.welch([1.0, 2.0, math.inf], [1.0, 2.0]), "infinite"),
        (lambda: ab.power(math.nan, 0.5, sd=1.0), "finite"),
        (lambda: ab.power(-20, 0.5, sd=1.0), "at least 2"),
        (lambda: ab.sample_ratio_mismatch({"A": -5, "B": 100}), "non-negative"),
        (lambda: ab.sample_ratio_mismatch({"A": 0, "B": 0}), "no traffic"),
        (lambda: ab.adjust([ab.TestResult("m", "t", "A", "B", 2, 2, 0, 0, 0, 0, 0, 1.6)]), r"\[0, 1\]"),
        (lambda: ab.adjust([], "nonsense"), "unknown correction"),
        (lambda: win_rate([0.5, 3.16, -2.0]), r"\[0, 1\]"),
        (lambda: ab.SequentialTest(tau=0), "tau"),
        (lambda: ab.SequentialTest(tau=-1), "tau"),
        (
            lambda: ab.ratio_difference([1.0, 2.0, 3.0], [1.0, 1.0], [1.0, 2.0], [1.0, 1.0]),
            "one value per unit",
        ),
        (lambda: ab.sample_size(0.5, sd=1.0, alpha=1.5), "alpha"),
        (lambda: ab.minimum_detectable_effect(1, sd=1.0), "at least 2"),
        (lambda: ab.sample_size(0.0, sd=1.0), "non-zero"),
        (lambda: ab.prob_b_beats_a_rates(3, 10, 4, 10, prior=(0.0, 1.0)), "Beta prior"),
    ],
)
def test_issue_13_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(AnalysisError, match=message):
        call()


def test_sequential_test_counts_the_pairs_it_drops():
    test = ab.SequentialTest(paired=True, tau=0.1)
    look = test.update([1.0, np.nan, 3.0, 4.0], [1.5, 2.0, np.nan, 4.5])
    assert look.dropped_pairs == 2 and look.n_a == 2
    look = test.update([1.0, 2.0], [np.nan, 2.5])
    assert look.dropped_pairs == 3 and test.dropped == 3


def test_beta_prior_is_used_and_named():
    flat = ab.prob_b_beats_a_rates(12, 40, 18, 40)
    informed = ab.prob_b_beats_a_rates(12, 40, 18, 40, prior=(30, 70))
    assert "Beta(30, 70)" in informed.method and "Beta(1, 1)" in flat.method
    # the posterior means are (alpha + s) / (alpha + beta + n): shrunk towards 0.3
    assert informed.posterior_mean == pytest.approx((48 / 140) - (42 / 140))
    assert informed.prob_b_better < flat.prob_b_better


def test_means_prior_shrinks_the_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 50), rng.normal(0.3, 1, 50)
    flat = ab.prob_b_beats_a_means(a, b)
    informed = ab.prob_b_beats_a_means(a, b, prior=(0.0, 0.05))
    assert (
        abs(informed.posterior_mean) < abs(flat.posterior_mean) and informed.posterior_sd < flat.posterior_sd
    )


def _report_frame() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    prompts = [f"p{i}" for i in range(60)]
    rows = []
    for arm in ("control", "treatment"):
        rows.append(
            pl.DataFrame(
                {
                    "run_name": arm,
                    "prompt": prompts,
                    "quality": rng.random(60),
                    "status": "ok",
                    "cost_usd": rng.lognormal(-6, 0.3, 60),
                    "latency_ms": rng.lognormal(6, 0.3, 60),
                    "judge_score": [None] * 59 + [0.5] if arm == "treatment" else rng.random(60).tolist(),
                }
            )
        )
    return pl.concat(rows, how="vertical_relaxed")


def test_report_marks_a_single_row_metric_not_computable_and_keeps_the_others():
    metrics = (*ab.DEFAULT_METRICS, ab.Metric("judge", "continuous", "judge_score"))
    report = ab.ab_report(_report_frame(), control="control", metrics=metrics)
    by_metric = {r.metric: r for r in report}
    assert set(by_metric) == {"quality", "success", "cost_per_success", "p95_latency_ms", "judge"}
    judge = by_metric["judge"]
    assert not judge.computable and not judge.significant and judge.p_adjusted is None
    assert "not computable" in judge.verdict and "at least 2" in judge.verdict
    assert all(r.computable for m, r in by_metric.items() if m != "judge")
    assert by_metric["quality"].p_adjusted is not None
    assert any("not computable" in note for note in report.notes)
    assert report.table.filter(pl.col("metric") == "judge")["computable"].to_list() == [False]
