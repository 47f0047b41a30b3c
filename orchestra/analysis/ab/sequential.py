"""Sequential looks without inflating false positives: the mixture sequential probability ratio
test (mSPRT) gives always-valid p-values and confidence sequences.

With the effect estimate theta_n (difference of means) of variance V_n and a normal mixing
distribution N(0, tau^2) over effects, the likelihood ratio against "no effect" is

    L_n = sqrt(V_n / (V_n + tau^2)) * exp(tau^2 * theta_n^2 / (2 V_n (V_n + tau^2)))

(Johari, Koomen, Pekelis & Walsh, "Always Valid Inference", Operations Research 70(3), 2022;
Robbins, 1970). p_n = min(p_{n-1}, 1 / L_n) stays valid however often it is looked at, and the
1 - alpha confidence sequence is theta_n +- sqrt(2 V_n (V_n + tau^2) / tau^2 *
(log(1 / alpha) + log((V_n + tau^2) / V_n) / 2)). V_n uses the sample variance (asymptotic).

    test = SequentialTest(paired=True)
    look = test.update(new_scores_a, new_scores_b)   # after each batch of a sweep
    look.stop                                        # True once p < alpha: stop early
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestra.analysis.ab._data import check_alpha, pairs, values
from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class Look:
    n_a: int
    n_b: int
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    stop: bool
    dropped_pairs: int = 0


@dataclass
class SequentialTest:
    """Accumulates observations of both arms and reports an always-valid result at every look.

    `tau` is the scale of effects worth detecting (the mixing standard deviation, > 0); by
    default a tenth of the pooled standard deviation at the first look (a small standardised
    effect). Pairs holding a NaN are dropped and counted in `dropped` (and in each `Look`).
    """

    paired: bool = True
    alpha: float = 0.05
    tau: float | None = None
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)
    dropped: int = 0
    """Pairs (or values) dropped so far because they held a NaN."""

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if self.tau is not None and not (math.isfinite(self.tau) and self.tau > 0):
            raise AnalysisError(
                f"tau (the mixing standard deviation) must be a positive number (got {self.tau!r})"
            )

    def update(self, new_a: Any, new_b: Any) -> Look:
        if self.paired:
            x, y, dropped = pairs(new_a, new_b)
        else:
            (x, dropped_a), (y, dropped_b) = values(new_a, "arm A"), values(new_b, "arm B")
            dropped = dropped_a + dropped_b
        self.dropped += dropped
        self.a.extend(x.tolist())
        self.b.extend(y.tolist())
        look = self._look()
        self.looks.append(look)
        return look

    @property
    def stopped(self) -> bool:
        return any(look.stop for look in self.looks)

    def _look(self) -> Look:
        a, b = np.asarray(self.a), np.asarray(self.b)
        if min(a.size, b.size) < 2:
            raise AnalysisError("a sequential look needs at least two observations per arm")
        if self.paired:
            differences = b - a
            effect, variance = float(differences.mean()), float(differences.var(ddof=1)) / differences.size
        else:
            effect = float(b.mean() - a.mean())
            variance = float(a.var(ddof=1)) / a.size + float(b.var(ddof=1)) / b.size
        if self.tau is None:
            pooled = math.sqrt(max((a.var(ddof=1) + b.var(ddof=1)) / 2, 1e-12))
            self.tau = 0.1 * pooled  # fixed at the first look: the mixture must not move with the data
        previous = self.looks[-1] if self.looks else None
        p, low, high = mixture_look(effect, variance, self.tau**2, self.alpha, previous)
        return Look(a.size, b.size, effect, low, high, p, p < self.alpha, self.dropped)


def mixture_look(
    effect: float, variance: float, tau2: float, alpha: float, previous: Any = None
) -> tuple[float, float, float]:
    """(always-valid p, confidence-sequence low, high) of the normal-mixture SPRT at one look.

    `previous` is the last look (anything with p_value, ci_low, ci_high): the p-value is the
    running minimum and the interval the running intersection, both still valid.
    """
    last_p = previous.p_value if previous is not None else 1.0
    if variance == 0:
        p = last_p if effect == 0 else 0.0
        return p, effect, effect
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + tau2 * effect**2 / (
        2 * variance * (variance + tau2)
    )
    p = min(last_p, math.exp(-log_ratio) if log_ratio < 700 else 0.0, 1.0)
    half = math.sqrt(
        2
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )
    low, high = effect - half, effect + half
    if previous is not None:  # a confidence sequence may be intersected over time
        low, high = max(low, previous.ci_low), min(high, previous.ci_high)
    return p, low, high
