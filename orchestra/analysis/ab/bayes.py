"""Bayesian read-outs: the probability that B beats A, and the expected loss of choosing B.

Rates: Beta(1, 1) priors updated with successes and failures; P(p_B > p_A) by numerical
integration of f_B(x) F_A(x), the expected loss E[max(p_A - p_B, 0)] by seeded Monte Carlo.
Means: normal approximation of the difference, with closed-form probability and loss.

    prob_b_beats_a_rates(120, 400, 141, 400)   # BayesResult(prob_b_better=0.93..., ...)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate, stats

from orchestra.analysis.ab._data import pairs, values
from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class BayesResult:
    prob_b_better: float
    expected_loss_b: float
    expected_loss_a: float
    credible_low: float
    credible_high: float
    method: str

    @property
    def verdict(self) -> str:
        return (
            f"P(B beats A) = {self.prob_b_better:.3f}; choosing B risks an expected loss of "
            f"{self.expected_loss_b:.4g} (choosing A: {self.expected_loss_a:.4g}); {self.method}."
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
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b) or min(n_a, n_b) < 1:
        raise AnalysisError("successes must lie between 0 and n, and each arm needs at least one trial")
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
        method="beta-binomial, Beta(1, 1) priors",
    )


def prob_b_beats_a_means(a: Any, b: Any, *, paired: bool = False, credibility: float = 0.95) -> BayesResult:
    """Normal approximation: the difference of means ~ N(d, se^2) (flat prior)."""
    if paired:
        x, y, _ = pairs(a, b)
        d, se = float((y - x).mean()), float((y - x).std(ddof=1) / math.sqrt(x.size))
    else:
        (x, _), (y, _) = values(a, "arm A"), values(b, "arm B")
        d = float(y.mean() - x.mean())
        se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    if se == 0:
        better = 1.0 if d > 0 else (0.0 if d < 0 else 0.5)
        return BayesResult(better, max(-d, 0.0), max(d, 0.0), d, d, "exact (no variance)")
    z = d / se
    loss_b = se * stats.norm.pdf(z) - d * stats.norm.cdf(-z)  # E[max(-(D), 0)], D ~ N(d, se^2)
    loss_a = se * stats.norm.pdf(z) + d * stats.norm.cdf(z)
    half = stats.norm.ppf(0.5 + credibility / 2) * se
    return BayesResult(
        float(stats.norm.cdf(z)),
        float(loss_b),
        float(loss_a),
        d - half,
        d + half,
        f"normal approximation{' (paired)' if paired else ''}",
    )
