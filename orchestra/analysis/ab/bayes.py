"""Bayesian read-outs: the probability that B beats A, the expected loss of choosing B, and a
credible interval, with proper priors.

Rates: Beta(alpha, beta) priors (default Beta(1, 1)) updated with successes and failures;
P(p_B > p_A) by numerical integration of f_B(x) F_A(x), expected losses and the credible
interval of p_B - p_A by seeded Monte Carlo.
Means: the difference of means ~ N(d, se^2) (normal approximation), with an optional normal
prior N(mean, sd^2) on the difference (default flat); conjugate update, closed forms.
Relative lift: a normal prior N(mean, sd^2) on B / A - 1 (e.g. N(0, 0.05^2): most changes move
a metric by a few percent), conjugate with the delta-method likelihood N(lift, se^2).

Conjugate normal update (Gelman et al., Bayesian Data Analysis, 3rd ed., eq. 2.12):
    precision = 1 / prior_sd^2 + 1 / se^2,
    posterior mean = (prior_mean / prior_sd^2 + estimate / se^2) / precision.
Expected loss of choosing B: E[max(-D, 0)] = s phi(m / s) - m Phi(-m / s) for D ~ N(m, s^2).

    prob_b_beats_a_rates(120, 400, 141, 400, prior=(30, 70))   # BayesResult(prob_b_better=...)
    lift_posterior(Summary(4000, 0.21, 0.16), Summary(4000, 0.22, 0.17), prior_sd=0.05)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate, stats

from orchestra.analysis.ab._data import check_confidence, need, pairs, values
from orchestra.analysis.ab.lift import Summary, lift_and_se
from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class BayesResult:
    prob_b_better: float
    expected_loss_b: float
    expected_loss_a: float
    credible_low: float
    credible_high: float
    method: str
    posterior_mean: float = math.nan
    posterior_sd: float = math.nan

    @property
    def verdict(self) -> str:
        return (
            f"P(B beats A) = {self.prob_b_better:.3f}; choosing B risks an expected loss of "
            f"{self.expected_loss_b:.4g} (choosing A: {self.expected_loss_a:.4g}); "
            f"credible interval [{self.credible_low:.4g}, {self.credible_high:.4g}]; {self.method}."
        )


def prob_b_beats_a_rates(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int = 200_000,
    seed: int = 0,
    credibility: float = 0.95,
) -> BayesResult:
    """Beta-binomial read-out of two rates under a Beta(prior[0], prior[1]) prior on each."""
    credibility = check_confidence(credibility)
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b) or min(n_a, n_b) < 1:
        raise AnalysisError("successes must lie between 0 and n, and each arm needs at least one trial")
    if len(prior) != 2 or not all(math.isfinite(v) and v > 0 for v in prior):
        raise AnalysisError(f"a Beta prior needs two positive parameters (got {prior!r})")
    if draws < 1_000:
        raise AnalysisError("use at least 1,000 Monte Carlo draws")
    posterior_a = stats.beta(prior[0] + successes_a, prior[1] + n_a - successes_a)
    posterior_b = stats.beta(prior[0] + successes_b, prior[1] + n_b - successes_b)
    probability, _ = integrate.quad(lambda x: posterior_b.pdf(x) * posterior_a.cdf(x), 0, 1, limit=200)
    rng = np.random.default_rng(seed)
    sample_a, sample_b = posterior_a.rvs(draws, random_state=rng), posterior_b.rvs(draws, random_state=rng)
    difference = sample_b - sample_a
    tail = (1 - credibility) / 2
    return BayesResult(
        prob_b_better=float(min(max(probability, 0.0), 1.0)),
        expected_loss_b=float(np.maximum(-difference, 0).mean()),
        expected_loss_a=float(np.maximum(difference, 0).mean()),
        credible_low=float(np.quantile(difference, tail)),
        credible_high=float(np.quantile(difference, 1 - tail)),
        method=f"beta-binomial, Beta({prior[0]:g}, {prior[1]:g}) priors",
        posterior_mean=float(posterior_b.mean() - posterior_a.mean()),
        posterior_sd=float(math.sqrt(posterior_a.var() + posterior_b.var())),
    )


def prob_b_beats_a_means(
    a: Any,
    b: Any,
    *,
    paired: bool = False,
    credibility: float = 0.95,
    prior: tuple[float, float] | None = None,
) -> BayesResult:
    """Normal approximation: the difference of means ~ N(d, se^2); `prior=(mean, sd)` is a normal
    prior on the difference (None: flat). Needs two observations per arm (or two pairs)."""
    if paired:
        x, y, _ = pairs(a, b)
        need(x.size, 2, "a Bayesian read-out of means")
        d, se = float((y - x).mean()), float((y - x).std(ddof=1) / math.sqrt(x.size))
    else:
        (x, _), (y, _) = values(a, "arm A"), values(b, "arm B")
        need(min(x.size, y.size), 2, "a Bayesian read-out of means")
        d = float(y.mean() - x.mean())
        se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    label = f"normal approximation{' (paired)' if paired else ''}"
    return _normal_readout(d, se, prior, credibility, label)


def lift_posterior(
    a: Summary,
    b: Summary,
    *,
    prior_mean: float = 0.0,
    prior_sd: float = 0.1,
    credibility: float = 0.95,
) -> BayesResult:
    """Posterior of the relative lift B / A - 1 under a N(prior_mean, prior_sd^2) prior, with the
    delta-method likelihood; losses are in lift units (0.01 = one percent)."""
    lift, se = lift_and_se(a.mean, b.mean, a.se2, b.se2)
    return _normal_readout(lift, se, (prior_mean, prior_sd), credibility, "relative lift, normal prior")


def _normal_readout(
    estimate: float, se: float, prior: tuple[float, float] | None, credibility: float, label: str
) -> BayesResult:
    credibility = check_confidence(credibility)
    if prior is not None:
        prior_mean, prior_sd = prior
        if not (math.isfinite(prior_mean) and math.isfinite(prior_sd) and prior_sd > 0):
            raise AnalysisError(f"a normal prior needs a finite mean and a positive sd (got {prior!r})")
        label += f", N({prior_mean:g}, {prior_sd:g}^2) prior"
        if se == 0:
            mean, sd = estimate, 0.0
        else:
            precision = 1 / prior_sd**2 + 1 / se**2
            mean = (prior_mean / prior_sd**2 + estimate / se**2) / precision
            sd = math.sqrt(1 / precision)
    else:
        mean, sd = estimate, se
    if sd == 0:
        better = 1.0 if mean > 0 else (0.0 if mean < 0 else 0.5)
        return BayesResult(
            better, max(-mean, 0.0), max(mean, 0.0), mean, mean, "exact (no variance)", mean, 0.0
        )
    z = mean / sd
    loss_b = sd * stats.norm.pdf(z) - mean * stats.norm.cdf(-z)  # E[max(-D, 0)], D ~ N(mean, sd^2)
    loss_a = sd * stats.norm.pdf(z) + mean * stats.norm.cdf(z)
    half = stats.norm.ppf(0.5 + credibility / 2) * sd
    return BayesResult(
        float(stats.norm.cdf(z)), float(loss_b), float(loss_a), mean - half, mean + half, label, mean, sd
    )
