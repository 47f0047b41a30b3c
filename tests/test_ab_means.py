"""Two-sample and paired tests of means against R's documented outputs, one-sided alternatives,
and the degenerate intervals that must say so."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from orchestra.analysis import ab
from orchestra.errors import AnalysisError

# R's `sleep` data (Cushny & Peebles, 1905; Student, 1908): extra hours of sleep with two drugs.
GROUP1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
GROUP2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_welch_matches_r_t_test_on_sleep():
    # R: t.test(extra ~ group, data = sleep) -> t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent CI -3.3654832 0.2054832 (group1 - group2; here B - A, so the signs flip).
    result = ab.welch(GROUP1, GROUP2)
    assert result.method == "Welch's t-test"
    assert result.details["t"] == pytest.approx(1.8608, abs=1e-4)
    assert result.details["df"] == pytest.approx(17.776, abs=1e-3)
    assert result.p_value == pytest.approx(0.07939, abs=1e-5)
    assert result.ci == pytest.approx((-0.2054832, 3.3654832), abs=1e-7)


def test_student_t_matches_r_var_equal():
    # R: t.test(extra ~ group, data = sleep, var.equal = TRUE) -> t = -1.8608, df = 18,
    # p-value = 0.07919, 95 percent CI -3.363874 0.203874.
    result = ab.t_test(GROUP1, GROUP2, equal_var=True)
    assert result.method == "Student's t-test" and result.details["df"] == 18
    assert result.p_value == pytest.approx(0.07919, abs=1e-5)
    assert result.ci == pytest.approx((-0.203874, 3.363874), abs=1e-6)
    assert ab.student_t(GROUP1, GROUP2).p_value == result.p_value


def test_paired_t_matches_r_paired_sleep():
    # R: with(sleep, t.test(extra[group == 1], extra[group == 2], paired = TRUE)) -> t = -4.0621,
    # df = 9, p-value = 0.002833, 95 percent CI -2.4598858 -0.7001142, mean difference -1.58.
    result = ab.paired_t(GROUP1, GROUP2)
    assert result.effect == pytest.approx(1.58)
    assert result.p_value == pytest.approx(0.002833, abs=1e-6)
    assert result.ci == pytest.approx((0.7001142, 2.4598858), abs=1e-7)


def test_one_sided_alternatives_halve_the_p_value_and_open_the_interval():
    # R: t.test(extra ~ group, data = sleep, alternative = "less") -> p-value = 0.03969
    # (group1 < group2, i.e. B > A here), CI -Inf 0.1066185 for group1 - group2.
    greater = ab.welch(GROUP1, GROUP2, alternative="greater")
    assert greater.p_value == pytest.approx(0.03969, abs=1e-5)
    assert greater.ci_low == pytest.approx(0.1066185, abs=1e-7) and greater.ci_high == math.inf
    less = ab.welch(GROUP1, GROUP2, alternative="less")
    assert less.p_value == pytest.approx(1 - 0.03969, abs=1e-5) and less.ci_low == -math.inf
    paired = ab.paired_t(GROUP1, GROUP2, alternative="greater")
    assert paired.p_value == pytest.approx(0.002833 / 2, abs=1e-6)
    assert ab.mann_whitney(GROUP1, GROUP2, alternative="greater").p_value == pytest.approx(
        stats.mannwhitneyu(GROUP2, GROUP1, alternative="greater").pvalue
    )
    assert ab.wilcoxon(GROUP1, GROUP2, alternative="greater").ci_high == math.inf
    with pytest.raises(AnalysisError, match="alternative"):
        ab.welch(GROUP1, GROUP2, alternative="bigger")


def test_wilcoxon_reports_the_true_level_of_a_short_interval():
    # Five pairs: the widest order-statistic interval [min, max] covers the median difference
    # with probability 1 - 2 (1/2)^5 = 93.75% (Conover, 1999, 3.2), below the 95% asked.
    result = ab.wilcoxon([1, 2, 3, 4, 5], [2, 4, 5, 7, 9])
    assert result.confidence == pytest.approx(0.9375)
    assert result.ci == (1.0, 4.0)
    assert "93.75%" in result.warnings[0] and "93.75%" in result.verdict
    # Exact signed-rank null: 5 differences all positive is one of 2^5 sign patterns, so the
    # two-sided p is 2 / 32 (the smallest attainable; Hollander & Wolfe, 1973, Table A.4).
    assert result.p_value == pytest.approx(0.0625)
    many = ab.wilcoxon(np.arange(40.0), np.arange(40.0) + np.linspace(-1, 3, 40))
    assert many.confidence == 0.95 and many.warnings == ()
    assert many.details["achieved_confidence"] >= 0.95


def test_mann_whitney_complete_separation_is_flagged():
    one_each = ab.mann_whitney([1.0], [2.0])
    assert one_each.effect == 1.0 and one_each.ci == (1.0, 1.0)
    assert "complete separation" in one_each.warnings[0]
    assert ab.mann_whitney([3.0, 4.0], [1.0, 2.0]).warnings  # AUC 0
    assert ab.mann_whitney([1, 2, 3, 4], [2, 3, 4, 5]).warnings == ()


def test_infinite_values_are_refused_not_propagated():
    with pytest.raises(AnalysisError, match="infinite"):
        ab.welch([1.0, 2.0, math.inf], [1.0, 2.0, 3.0])
    with pytest.raises(AnalysisError, match="infinite"):
        ab.paired_t([1.0, 2.0, 3.0], [1.0, -math.inf, 3.0])
    with pytest.raises(AnalysisError, match="numbers"):
        ab.welch(["a", "b"], [1.0, 2.0])
    with pytest.raises(AnalysisError, match="confidence"):
        ab.welch([1.0, 2.0], [1.0, 3.0], confidence=95)


def test_exact_zero_variance_respects_the_alternative():
    assert ab.welch([1.0, 1.0], [2.0, 2.0], alternative="greater").p_value == 0.0
    assert ab.welch([1.0, 1.0], [2.0, 2.0], alternative="less").p_value == 1.0
