"""The power calculation made when an experiment starts: how many requests it may take.

    plan = plan_experiment(settings, sd=0.36, basis="logged requests")
    plan.max_requests, plan.fixed_horizon

For each candidate against the control, with traffic shares p0 and p1 of N requests, the
difference of means has variance V(N) = sd^2 (1 / (N p0) + 1 / (N p1)). The always-valid test
crosses its boundary at N when |estimate| exceeds the confidence sequence's half-width h(V(N))
(`orchestra.analysis.ab.sequential.mixture_look`), so its power at the end is at least
Phi((min_effect - h(V(N))) / sqrt(V(N))) (a crossing at an earlier look only adds power); the
maximum N is the smallest with that power (scipy's brentq). The fixed-horizon sample size of a
two-sided t-test at the same alpha, power and split (statsmodels' `TTestIndPower`) is reported
beside it: the price of looking at every batch is the ratio of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from orchestra.config.experiments import CONTROL, ExperimentSettings

DEFAULT_SD = 0.5
"""The largest standard deviation a metric in [0, 1] can have: a conservative plan."""


@dataclass(frozen=True)
class Plan:
    """The maximum number of requests (all arms) before the experiment is called inconclusive."""

    max_requests: int
    per_candidate: dict[str, int]
    fixed_horizon: dict[str, int]
    sd: float
    sd_basis: str
    min_effect: float
    alpha: float  # per candidate (alpha / number of candidates)
    power: float
    tau: float

    def as_dict(self) -> dict[str, object]:
        return {
            "max_requests": self.max_requests,
            "per_candidate": dict(self.per_candidate),
            "fixed_horizon": dict(self.fixed_horizon),
            "sd": self.sd,
            "sd_basis": self.sd_basis,
            "min_effect": self.min_effect,
            "alpha": self.alpha,
            "power": self.power,
            "tau": self.tau,
        }

    def __str__(self) -> str:
        ratio = max(self.per_candidate.values()) / max(max(self.fixed_horizon.values()), 1)
        return (
            f"at most {self.max_requests} requests: power {self.power:g} to detect {self.min_effect:g} "
            f"(sd {self.sd:.3f} from {self.sd_basis}, alpha {self.alpha:.3g} per candidate); "
            f"a fixed-horizon test would need {max(self.fixed_horizon.values())} ({ratio:.1f}x fewer)"
        )


def plan_experiment(settings: ExperimentSettings, *, sd: float | None = None, basis: str = "") -> Plan:
    """The plan for `settings`; `sd` (the primary metric's per-request sd) overrides the default."""
    if settings.baseline_sd is not None:
        sd, basis = settings.baseline_sd, "experiments.<name>.baseline_sd"
    elif sd is None or not math.isfinite(sd) or sd <= 0:
        sd, basis = DEFAULT_SD, "the largest sd of a [0, 1] metric"
    shares = settings.shares()
    alpha = settings.alpha / len(settings.candidates)
    tau = settings.tau or settings.min_effect
    per_candidate, fixed = {}, {}
    for arm in settings.candidates:
        weights = 1.0 / shares[CONTROL] + 1.0 / shares[arm]
        per_candidate[arm] = max(
            always_valid_horizon(settings.min_effect, sd, weights, alpha, settings.power, tau),
            math.ceil(settings.min_per_arm / min(shares[CONTROL], shares[arm])),
        )
        fixed[arm] = fixed_horizon(
            settings.min_effect, sd, shares[CONTROL], shares[arm], alpha, settings.power
        )
    maximum = settings.max_requests or max(per_candidate.values())
    return Plan(
        maximum, per_candidate, fixed, float(sd), basis, settings.min_effect, alpha, settings.power, tau
    )


def always_valid_power(n: float, effect: float, sd: float, weights: float, alpha: float, tau: float) -> float:
    """A lower bound on the always-valid test's power after n requests (see the module docstring)."""
    variance = sd**2 * weights / n
    tau2 = tau**2
    half = math.sqrt(
        2
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )
    return float(stats.norm.cdf((abs(effect) - half) / math.sqrt(variance)))


def always_valid_horizon(
    effect: float, sd: float, weights: float, alpha: float, power: float, tau: float
) -> int:
    """The smallest number of requests at which the always-valid test has `power`."""

    def shortfall(log_n: float) -> float:
        return always_valid_power(math.exp(log_n), effect, sd, weights, alpha, tau) - power

    high = math.log(1e12)
    if shortfall(high) < 0:
        return 10**12
    return math.ceil(math.exp(optimize.brentq(shortfall, math.log(2.0), high)))


def fixed_horizon(
    effect: float, sd: float, control_share: float, candidate_share: float, alpha: float, power: float
) -> int:
    """Total requests for a two-sided fixed-horizon t-test with this split (statsmodels)."""
    from statsmodels.stats.power import TTestIndPower

    control = TTestIndPower().solve_power(
        effect_size=effect / sd, alpha=alpha, power=power, ratio=candidate_share / control_share
    )
    return math.ceil(float(np.asarray(control).item()) / control_share)
