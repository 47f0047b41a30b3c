"""Error bars for evals (cluster-robust standard errors, the paired bootstrap, the sample size to
separate two models) and prediction-powered inference against the authors' implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from orchestra.analysis import ab
from orchestra.errors import AnalysisError


def test_cluster_robust_error_matches_the_sandwich_formula():
    # Cameron & Miller (2015), J. Human Resources 50(2), eq. 11 with the CR1 factor
    # G/(G-1) (N-1)/(N-K): for a mean (K = 1), V = G/(G-1) sum_g (sum_i u_ig)^2 / N^2;
    # Miller (2024), "Adding Error Bars to Evals", sec. 2.2 uses the same sum of within-cluster
    # cross products.
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(30), 5)
    shared = rng.normal(0, 0.5, 30)[clusters]
    a = rng.normal(0, 1, 150)
    b = a + 0.2 + shared + rng.normal(0, 0.3, 150)
    result = ab.clustered_difference(a, b, clusters)
    d = b - a
    u = d - d.mean()
    sums = np.bincount(clusters, weights=u)
    se = math.sqrt(30 / 29 * (sums**2).sum() / 150**2)
    assert result.effect == pytest.approx(d.mean())
    assert result.details["se"] == pytest.approx(se)
    half = stats.t.ppf(0.975, 29) * se
    assert result.ci == pytest.approx((d.mean() - half, d.mean() + half))
    assert result.details["design_effect"] > 2  # five correlated prompts per cluster
    with pytest.raises(AnalysisError, match="two clusters"):
        ab.clustered_difference(a, b, np.zeros(150))
    with pytest.raises(AnalysisError, match="one value per prompt"):
        ab.clustered_difference(a, b, clusters[:-1])


def test_paired_bootstrap_is_the_paired_resampling():
    rng = np.random.default_rng(1)
    a = rng.random(200)
    b = a + 0.05 + rng.normal(0, 0.05, 200)
    result = ab.paired_bootstrap(a, b, seed=2)
    assert result.method.startswith("paired bootstrap")
    assert result.ci_low < 0.05 < result.ci_high and result.ci_high - result.ci_low < 0.03


def test_eval_sample_size_matches_millers_formula_and_statsmodels():
    # Miller (2024), sec. 5: n = (z_{1-alpha/2} + z_power)^2 (sd_a^2 + sd_b^2 - 2 rho sd_a sd_b) / delta^2.
    sd = math.sqrt(0.7 * 0.3)  # accuracies near 70%
    n = ab.eval_sample_size(0.03, sd_a=sd, sd_b=sd, correlation=0.5)
    omega2 = 2 * sd**2 - 2 * 0.5 * sd**2
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * omega2 / 0.03**2
    assert n == math.ceil(expected)
    one_sample = NormalIndPower().solve_power(
        effect_size=0.03 / math.sqrt(omega2), alpha=0.05, power=0.8, ratio=0
    )
    assert n == math.ceil(one_sample)
    assert ab.eval_sample_size(0.03, sd_a=sd, sd_b=sd, correlation=0.0) == pytest.approx(2 * n, abs=2)
    for bad in (dict(difference=0.0), dict(correlation=1.5), dict(alpha=0.0)):
        with pytest.raises(AnalysisError):
            ab.eval_sample_size(**({"difference": 0.03, "sd_a": sd, "sd_b": sd} | bad))


# A small labelled set (human labels and the judge's scores on them) and judge-only scores.
HUMAN = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], dtype=float)
JUDGE = np.array([0.9, 0.2, 0.8, 0.6, 0.3, 0.7, 0.9, 0.4, 0.8, 0.5])
JUDGE_ONLY = np.array(
    [
        0.9,
        0.1,
        0.7,
        0.8,
        0.6,
        0.2,
        0.9,
        0.3,
        0.5,
        0.8,
        0.7,
        0.4,
        0.95,
        0.15,
        0.6,
        0.85,
        0.35,
        0.75,
        0.55,
        0.65,
    ]
)


@pytest.mark.parametrize(
    ("lam", "estimate", "interval"),
    [
        # ppi_py 0.2.3 (Angelopoulos et al.'s reference implementation), ppi_mean_pointestimate and
        # ppi_mean_ci(HUMAN, JUDGE, JUDGE_ONLY, alpha=0.05, lam=...) on these arrays:
        (None, 0.67844412, (0.46921403, 0.88767421)),  # PPI++ (power-tuned lambda)
        (1.0, 0.6775, (0.46868391, 0.88631609)),  # PPI (Angelopoulos et al., 2023, Science)
        (0.0, 0.7, (0.41597423, 0.98402577)),  # classical: the human labels alone
    ],
)
def test_ppi_matches_the_reference_implementation(lam, estimate, interval):
    result = ab.ppi_mean(HUMAN, JUDGE, JUDGE_ONLY, lam=lam)
    assert result.estimate == pytest.approx(estimate, abs=1e-8)
    assert (result.ci_low, result.ci_high) == pytest.approx(interval, abs=1e-8)


def test_ppi_gain_and_difference_between_two_models():
    rng = np.random.default_rng(3)
    truth_a, truth_b = rng.random(5000) < 0.6, rng.random(5000) < 0.7
    judge_a = np.clip(truth_a + rng.normal(0, 0.3, 5000), 0, 1)
    judge_b = np.clip(truth_b + rng.normal(0, 0.3, 5000), 0, 1)
    labelled = slice(0, 200)
    rest = slice(200, None)
    single = ab.ppi_mean(truth_a[labelled], judge_a[labelled], judge_a[rest])
    assert single.gain > 2 and single.effective_n == pytest.approx(200 * single.gain)
    assert single.ci_low < 0.6 < single.ci_high and "human labels" in single.verdict
    difference = ab.ppi_difference(
        truth_a[labelled],
        truth_b[labelled],
        judge_a[labelled],
        judge_b[labelled],
        judge_a[rest],
        judge_b[rest],
    )
    assert difference.ci_low < 0.1 < difference.ci_high and difference.se < difference.classical_se
    with pytest.raises(AnalysisError, match="align"):
        ab.ppi_mean(HUMAN, JUDGE[:-1], JUDGE_ONLY)
    with pytest.raises(AnalysisError, match="lam"):
        ab.ppi_mean(HUMAN, JUDGE, JUDGE_ONLY, lam=2.0)


def test_ppi_covers_at_its_level():
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(300):
        truth = rng.random(2100) < 0.5
        judge = np.clip(truth * 0.8 + rng.normal(0.1, 0.2, 2100), 0, 1)  # a biased judge
        result = ab.ppi_mean(truth[:100], judge[:100], judge[100:])
        covered += result.ci_low <= 0.5 <= result.ci_high
    assert covered / 300 == pytest.approx(0.95, abs=0.035)
