"""Proportions, contingency tables and k-sample tests against R's help-page examples, Fisher's
tea-tasting table and Dunnett's (1955) blood-count example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestra.analysis import ab
from orchestra.errors import AnalysisError


def test_equal_proportions_matches_r_prop_test_smokers():
    # R ?prop.test: smokers <- c(83, 90, 129, 70); patients <- c(86, 93, 136, 82);
    # prop.test(smokers, patients) -> X-squared = 12.6, df = 3, p-value = 0.005585.
    result = ab.equal_proportions([83, 90, 129, 70], [86, 93, 136, 82])
    assert result.statistic == pytest.approx(12.6, abs=0.005)
    assert result.df == 3 and result.p_value == pytest.approx(0.005585, abs=5e-7)


def test_chi_square_independence_matches_r_chisq_test():
    # R ?chisq.test (Agresti, 2007, p. 39: party identification by gender):
    # M <- as.table(rbind(c(762, 327, 468), c(484, 239, 477))) -> X-squared = 30.07, df = 2,
    # p-value = 2.954e-07.
    result = ab.chi_square_independence([[762, 327, 468], [484, 239, 477]])
    assert result.statistic == pytest.approx(30.07, abs=0.005)
    assert result.df == 2 and result.p_value == pytest.approx(2.954e-07, rel=1e-3)
    assert result.warnings == ()


def test_chi_square_warns_on_small_expected_counts():
    small = ab.chi_square_independence([[3, 1, 0], [1, 3, 2]])
    assert small.warnings and "expected counts" in small.warnings[0]
    with pytest.raises(AnalysisError, match="all zero"):
        ab.chi_square_independence([[3, 0], [1, 0]])
    with pytest.raises(AnalysisError, match="whole counts"):
        ab.chi_square_independence([[3, -1], [1, 2]])


def test_kruskal_wallis_matches_r_kruskal_test():
    # R ?kruskal.test (Hollander & Wolfe, 1973, p. 116, mucociliary efficiency):
    # kruskal.test(list(x, y, z)) -> Kruskal-Wallis chi-squared = 0.77143, df = 2, p-value = 0.68.
    x = [2.9, 3.0, 2.5, 2.6, 3.2]
    y = [3.8, 2.7, 4.0, 2.4]
    z = [2.8, 3.4, 3.7, 2.2, 2.0]
    result = ab.kruskal_wallis(x, y, z)
    assert result.statistic == pytest.approx(0.77143, abs=1e-5)
    assert result.df == 2 and result.p_value == pytest.approx(0.68, abs=0.005)
    with pytest.raises(AnalysisError, match="identical"):
        ab.kruskal_wallis([1, 1], [1, 1])


def test_dunnett_matches_the_scipy_example_of_dunnett_1955():
    # scipy.stats.dunnett docs / tutorial, data of Dunnett (1955), JASA 50:1096-1121 (blood counts,
    # millions of cells per cubic mm): res.pvalue -> array([0.62004941, 0.0059035]).
    control = [7.40, 8.50, 7.20, 8.24, 9.84, 8.32]
    drug_a = [9.76, 8.80, 7.68, 9.36]
    drug_b = [12.80, 9.68, 12.16, 9.20, 10.55]
    results = ab.many_to_one(control, {"drug_a": drug_a, "drug_b": drug_b}, method="dunnett")
    assert [r.p_value for r in results] == pytest.approx([0.62004941, 0.0059035], abs=1e-3)  # QMC
    assert [r.arm_b for r in results] == ["drug_a", "drug_b"]
    assert results[1].effect == pytest.approx(np.mean(drug_b) - np.mean(control))
    assert results[1].ci_low > 0 > results[0].ci_low and results[1].significant
    holm = ab.many_to_one(control, {"drug_a": drug_a, "drug_b": drug_b}, method="holm")
    assert all(r.adjustment == "holm" for r in holm)
    assert holm[1].p_adjusted == pytest.approx(min(1.0, 2 * holm[1].p_value))  # the smaller p, x2


def test_fisher_matches_r_tea_tasting():
    # R ?fisher.test, Fisher's (1935) lady tasting tea, TeaTasting <- matrix(c(3, 1, 1, 3), 2):
    # two-sided p-value = 0.4857, conditional MLE odds ratio 6.408309, 95% CI 0.2117329 ...;
    # alternative = "greater": p-value = 0.2429, CI 0.3135693 Inf.
    truth_milk, truth_tea = [1, 1, 1, 0], [1, 0, 0, 0]
    two_sided = ab.fisher(truth_tea, truth_milk)
    assert two_sided.p_value == pytest.approx(0.4857, abs=1e-4)
    assert two_sided.effect == pytest.approx(6.408309, rel=1e-5)
    assert two_sided.ci_low == pytest.approx(0.2117329, rel=1e-4)
    greater = ab.fisher(truth_tea, truth_milk, alternative="greater")
    assert greater.p_value == pytest.approx(0.2429, abs=1e-4)
    assert greater.ci_low == pytest.approx(0.3135693, rel=1e-4) and greater.ci_high == math.inf


def test_fisher_on_identical_one_outcome_arms_says_the_odds_ratio_is_undefined():
    result = ab.fisher([1, 1, 1], [1, 1, 1, 1])
    assert math.isnan(result.effect) and result.ci == (0.0, math.inf) and result.p_value == 1.0
    assert "undefined" in result.warnings[0] and not result.significant


def test_two_proportion_z_one_sided_matches_statsmodels():
    from statsmodels.stats.proportion import proportions_ztest

    a = np.r_[np.ones(45), np.zeros(55)]
    b = np.r_[np.ones(60), np.zeros(40)]
    result = ab.two_proportion_z(a, b, alternative="greater")
    assert result.p_value == pytest.approx(proportions_ztest([60, 45], [100, 100], alternative="larger")[1])
    assert result.ci_high == 1.0 and 0 < result.ci_low < 0.15


def test_mcnemar_all_discordant_one_way_is_flagged():
    # Every pair favours B: the Wald interval of Agresti (2002, 10.1) has zero width.
    result = ab.mcnemar([0, 0, 0, 0, 0], [1, 1, 1, 1, 1])
    assert result.effect == 1.0 and result.ci == (1.0, 1.0)
    assert "zero width" in result.warnings[0]
    assert ab.mcnemar([1, 0, 1, 0], [1, 0, 1, 0]).warnings  # no discordant pair at all


def test_mcnemar_one_sided_is_the_exact_binomial_of_discordant_pairs():
    # McNemar (1947); Agresti (2002, 10.1.4): conditional on 12 discordant pairs, 10 favouring B
    # is Binomial(12, 1/2): P(X >= 10) = (66 + 12 + 1) / 4096.
    a = [0] * 10 + [1] * 2 + [1] * 5
    b = [1] * 10 + [0] * 2 + [1] * 5
    result = ab.mcnemar(a, b, alternative="greater")
    assert result.p_value == pytest.approx(79 / 4096)
    assert result.ci_high == math.inf and result.ci_low > 0
    ratio = ab.ratio_difference(
        [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], [2.0, 3.0, 4.0, 5.0], [1, 1, 1, 1], alternative="less"
    )
    assert ratio.ci_low == -math.inf and ratio.p_value > 0.5
