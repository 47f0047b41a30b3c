"""Always-valid sequences for a running experiment, updated from running sums in O(1) per look.

    primary = DifferenceSequence(alpha=0.05, tau=0.05)
    look = primary.update(control_moments, candidate_moments)   # None while not estimable

Each sequence feeds its estimate and the variance of that estimate into the normal-mixture SPRT
of `orchestra.analysis.ab.sequential.mixture_look` (the boundary `SequentialTest` and
`LiftSequence` use): the p-value is the running minimum of 1 / L_n and the confidence sequence
the running intersection, valid however often it is looked at. Unlike `SequentialTest` (which
keeps every value and recomputes), these keep running moments; and a look whose variance is
still zero (all values equal so far, common for error rates) is skipped instead of pinning the
interval to a point for good.

- `DifferenceSequence`: the difference of two arms' means (candidate - control).
- `RelativeSequence`: the relative lift of the means (candidate / control - 1), delta method
  (`orchestra.analysis.ab.lift.lift_and_se`), as in `LiftSequence`.
- `ExceedanceSequence`: the share of the candidate's values above a fixed threshold, minus a
  target share (the p95 latency guardrail: above the control's p95 x (1 + tolerance) more than
  5% of the time means the candidate's p95 is above it).
- `SequentialSRM`: an always-valid sample-ratio check on the units per arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from orchestra.analysis.ab.lift import lift_and_se
from orchestra.analysis.ab.sequential import Look, mixture_look


@dataclass
class RunningMoments:
    """n, mean and the sum of squared deviations (Welford), for one arm and one metric."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    @property
    def variance(self) -> float:
        """The variance of one observation (ddof=1)."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    @property
    def se2(self) -> float:
        """The variance of the mean."""
        return self.variance / self.n if self.n > 1 else math.nan


@dataclass
class _Sequence:
    alpha: float
    tau: float
    looks: list[Look] = field(default_factory=list)

    @property
    def last(self) -> Look | None:
        return self.looks[-1] if self.looks else None

    def _look(self, n_a: int, n_b: int, effect: float, variance: float) -> Look | None:
        if not (math.isfinite(effect) and math.isfinite(variance)) or variance <= 0:
            return None  # not estimable yet: no look (the interval is not pinned to a point)
        p, low, high = mixture_look(effect, variance, self.tau**2, self.alpha, self.last)
        look = Look(n_a, n_b, effect, low, high, p, p < self.alpha)
        self.looks.append(look)
        return look


class DifferenceSequence(_Sequence):
    """Candidate mean minus control mean, two independent samples. The variance of the estimate
    is the larger of the unpooled one and the one from the two samples pooled: an arm whose
    values are all equal so far (a candidate that always fails, a control that never does)
    still gives a look when the other arm differs from it."""

    def update(self, control: RunningMoments, candidate: RunningMoments) -> Look | None:
        if min(control.n, candidate.n) < 2:
            return None
        effect = candidate.mean - control.mean
        n = control.n + candidate.n
        pooled_m2 = control.m2 + candidate.m2 + effect**2 * control.n * candidate.n / n
        pooled = pooled_m2 / (n - 1) * (1 / control.n + 1 / candidate.n)
        return self._look(control.n, candidate.n, effect, max(control.se2 + candidate.se2, pooled))


class RelativeSequence(_Sequence):
    """Candidate mean / control mean - 1 (undefined while the control's mean is zero)."""

    def update(self, control: RunningMoments, candidate: RunningMoments) -> Look | None:
        if min(control.n, candidate.n) < 2 or control.mean == 0:
            return None
        lift, se = lift_and_se(control.mean, candidate.mean, control.se2, candidate.se2)
        return self._look(control.n, candidate.n, lift, se**2)


class ExceedanceSequence(_Sequence):
    """The candidate's share of values above `threshold`, minus `share`. The variance is the
    larger of the observed one and the one at the null boundary (share), so that a run of
    values all below the threshold does not make the estimate look exact."""

    def __init__(self, alpha: float, tau: float, threshold: float, share: float = 0.05) -> None:
        super().__init__(alpha, tau)
        self.threshold = threshold
        self.share = share

    def update(self, n: int, above: int) -> Look | None:
        if n < 2:
            return None
        observed = above / n
        variance = max(observed * (1 - observed), self.share * (1 - self.share)) / n
        return self._look(n, n, observed - self.share, variance)


@dataclass
class SequentialSRM:
    """An always-valid sample-ratio check: the Bayes factor of a Dirichlet-multinomial mixture
    (concentration `prior` x the expected shares) against the expected shares (Lindon & Malek,
    2022, "Anytime-valid inference for multinomial count data", NeurIPS), from scipy's
    `dirichlet_multinomial` and `multinomial`. p is the running minimum of 1 / BF: looking after
    every batch does not raise the false-alarm rate above the threshold, as repeating the
    chi-square test of `sample_ratio_mismatch` at every look would."""

    shares: dict[str, float]
    prior: float = 100.0
    p_value: float = 1.0

    def update(self, counts: dict[str, int]) -> float:
        from scipy.stats import dirichlet_multinomial, multinomial

        arms = list(self.shares)
        x = np.array([counts[arm] for arm in arms])
        expected = np.array([self.shares[arm] for arm in arms])
        n = int(x.sum())
        if n > 0:
            log_bf = float(dirichlet_multinomial.logpmf(x, self.prior * expected, n)) - float(  # type: ignore[arg-type]
                multinomial.logpmf(x, n, expected)
            )
            self.p_value = min(self.p_value, math.exp(-log_bf) if log_bf < 700 else 0.0)
        return self.p_value
