"""A confidence sequence on the relative lift, fed with cumulative summary statistics: watch a
running experiment as often as you like and stop when the interval excludes zero.

    monitor = LiftSequence(alpha=0.05, tau=0.05)
    look = monitor.update(Summary(2_000, 0.210, 0.166), Summary(2_000, 0.231, 0.178))
    look.ci_low, look.ci_high, look.stop

Conventions: at each look the lift B / A - 1 and its delta-method variance V (see `lift`) enter
the normal-mixture boundary of the mixture SPRT (Robbins, 1970; Johari et al., 2022, "Always
Valid Inference", Operations Research 70(3)), with mixing scale `tau` on the lift scale (0.05:
lifts of a few percent). The interval is lift +- sqrt(2 V (V + tau^2) / tau^2 (log(1 / alpha) +
log((V + tau^2) / V) / 2)), intersected over looks, and p is the running minimum of 1 / L.
Validity is asymptotic (the delta method and the normal approximation), as for all confidence
sequences built on a CLT (Waudby-Smith et al., 2024, "Time-uniform central limit theory").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from orchestra.analysis.ab._data import check_alpha
from orchestra.analysis.ab.lift import Summary, lift_and_se
from orchestra.analysis.ab.sequential import Look, mixture_look
from orchestra.errors import AnalysisError


@dataclass
class LiftSequence:
    """Always-valid monitoring of the relative lift from cumulative per-arm summaries."""

    alpha: float = 0.05
    tau: float = 0.05
    looks: list[Look] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise AnalysisError(f"tau must be a positive number (got {self.tau!r})")

    def update(self, a: Summary, b: Summary) -> Look:
        """A look at the cumulative summaries of both arms (n never decreases between looks)."""
        if self.looks and (a.n < self.looks[-1].n_a or b.n < self.looks[-1].n_b):
            raise AnalysisError("summaries must be cumulative: n cannot decrease between looks")
        lift, se = lift_and_se(a.mean, b.mean, a.se2, b.se2)
        previous = self.looks[-1] if self.looks else None
        p, low, high = mixture_look(lift, se**2, self.tau**2, self.alpha, previous)
        look = Look(a.n, b.n, lift, low, high, p, p < self.alpha)
        self.looks.append(look)
        return look

    @property
    def stopped(self) -> bool:
        return any(look.stop for look in self.looks)
