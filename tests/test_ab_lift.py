"""Relative lift (delta method and Fieller) from values, aggregates and counts; the normal prior on
the lift; checked against the published formulas and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from orchestra.analysis import ab
from orchestra.errors import AnalysisError


def test_delta_method_lift_matches_the_published_formula():
    # Deng, Knoblich & Lu (2018), KDD, sec. 3.3 (percent change): Var(Yt/Yc) ~
    # var(Yt)/Yc^2 + Yt^2 var(Yc)/Yc^4 for independent arm means.
    a, b = ab.Summary(1000, 10.0, 16.0), ab.Summary(1200, 10.6, 20.25)
    result = ab.relative_lift_from_summary(a, b)
    va, vb = 16.0 / 1000, 20.25 / 1200
    se = math.sqrt(vb / 10.0**2 + 10.6**2 * va / 10.0**4)
    assert result.effect == pytest.approx(0.06)
    assert result.details["se"] == pytest.approx(se)
    assert result.ci == pytest.approx((0.06 - 1.959964 * se, 0.06 + 1.959964 * se), rel=1e-6)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(0.06 / se))
    assert result.effect_kind == "relative lift"


def test_fieller_interval_solves_fiellers_quadratic():
    # Fieller (1954), JRSS B 16:175-185: the interval's ends R solve
    # (m_b - R m_a)^2 = z^2 (v_b + R^2 v_a); it is asymmetric around m_b / m_a.
    ma, mb, va, vb = 2.0, 2.6, 0.09, 0.12
    low, high, bounded = ab.fieller_interval(ma, mb, va, vb)
    z2 = stats.norm.ppf(0.975) ** 2
    for ratio in (low, high):
        assert (mb - ratio * ma) ** 2 == pytest.approx(z2 * (vb + ratio**2 * va))
    assert bounded and low < mb / ma < high and (high - mb / ma) > (mb / ma - low)
    result = ab.relative_lift_from_summary(
        ab.Summary(100, ma, va * 100), ab.Summary(100, mb, vb * 100), method="fieller"
    )
    assert (result.ci_low, result.ci_high) == pytest.approx((low - 1, high - 1))
    # Its p-value is the pivot at R = 1: the z-test of the difference of means.
    assert result.p_value == pytest.approx(2 * stats.norm.sf(0.6 / math.sqrt(va + vb)))


def test_fieller_is_unbounded_when_the_control_mean_may_be_zero():
    result = ab.relative_lift_from_summary(
        ab.Summary(10, 0.1, 1.0), ab.Summary(10, 0.5, 1.0), method="fieller"
    )
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    assert "unbounded" in result.warnings[0]
    with pytest.raises(AnalysisError, match="zero"):
        ab.relative_lift_from_summary(ab.Summary(10, 0.0, 1.0), ab.Summary(10, 0.5, 1.0))


def test_summaries_from_sums_values_and_counts_agree():
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, 400)
    from_values = ab.Summary.from_values(x)
    from_sums = ab.Summary.from_sums(400, float(x.sum()), float((x**2).sum()))
    assert from_sums.mean == pytest.approx(from_values.mean)
    assert from_sums.variance == pytest.approx(from_values.variance)
    counts = ab.relative_lift_from_counts(120, 1000, 141, 1000)
    assert counts.effect == pytest.approx(141 / 120 - 1)
    # binomial variance p(1 - p) / n per arm
    va, vb = 0.12 * 0.88 / 1000, 0.141 * 0.859 / 1000
    assert counts.details["se"] == pytest.approx(math.sqrt(vb / 0.12**2 + 0.141**2 * va / 0.12**4))
    with pytest.raises(AnalysisError, match="inconsistent"):
        ab.Summary.from_sums(10, 100.0, 50.0)
    with pytest.raises(AnalysisError, match="n >= 2"):
        ab.Summary(1, 1.0, 0.0)
    with pytest.raises(AnalysisError, match="successes"):
        ab.Summary.from_proportion(12, 10)


def test_raw_values_and_paired_lift():
    rng = np.random.default_rng(4)
    base = rng.lognormal(0, 0.5, 3000)
    independent = ab.relative_lift(base, base * 1.02 + rng.normal(0, 0.01, 3000))
    paired = ab.relative_lift(base, base * 1.02 + rng.normal(0, 0.01, 3000), paired=True)
    assert paired.effect == pytest.approx(0.02, abs=0.002)
    assert paired.details["se"] < independent.details["se"] / 10  # the covariance is used


@pytest.mark.parametrize("method", ["delta", "fieller"])
def test_lift_intervals_cover_at_their_level(method):
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(400):
        a, b = rng.exponential(1.0, 300), rng.exponential(1.1, 300)
        result = ab.relative_lift(a, b, method=method)
        covered += result.ci_low <= 0.1 <= result.ci_high
    assert covered / 400 == pytest.approx(0.95, abs=0.03)


def test_lift_posterior_is_the_conjugate_normal_update():
    # Gelman et al., Bayesian Data Analysis (3rd ed.), eq. 2.12: precision-weighted mean.
    a, b = ab.Summary(4000, 0.20, 0.16), ab.Summary(4000, 0.21, 0.1659)
    lift, se = 0.21 / 0.20 - 1, ab.relative_lift_from_summary(a, b).details["se"]
    posterior = ab.lift_posterior(a, b, prior_mean=0.0, prior_sd=0.02)
    precision = 1 / 0.02**2 + 1 / se**2
    mean, sd = (lift / se**2) / precision, math.sqrt(1 / precision)
    assert posterior.posterior_mean == pytest.approx(mean) and posterior.posterior_sd == pytest.approx(sd)
    assert posterior.prob_b_better == pytest.approx(stats.norm.cdf(mean / sd))
    assert posterior.expected_loss_b == pytest.approx(
        sd * stats.norm.pdf(mean / sd) - mean * stats.norm.cdf(-mean / sd)
    )
    assert (posterior.credible_low, posterior.credible_high) == pytest.approx(
        stats.norm.interval(0.95, mean, sd)
    )
    assert 0 < posterior.posterior_mean < lift  # shrunk towards the prior mean
    with pytest.raises(AnalysisError, match="prior"):
        ab.lift_posterior(a, b, prior_sd=0)
