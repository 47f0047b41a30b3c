"""Planning: power, sample size and minimum detectable effect (statsmodels underneath).

    sample_size(effect=0.05, sd=0.4)                          # per arm, independent means
    sample_size(effect=0.05, sd=0.3, design="paired")         # pairs; sd of the differences
    sample_size(effect=0.05, baseline=0.20, metric="binary")  # per arm, two proportions
    minimum_detectable_effect(n=400, sd=0.4, design="paired")

For paired binary outcomes (McNemar) the discordant probability is needed; the normal
approximation of Connor (1987, Biometrics 43:207-211) is used there.
"""

from __future__ import annotations

import math
from typing import Literal

from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
from statsmodels.stats.proportion import proportion_effectsize

from orchestra.errors import AnalysisError

Design = Literal["independent", "paired"]
Kind = Literal["continuous", "binary"]


def _t_engine(design: Design, n: float | None = None) -> tuple[TTestPower | TTestIndPower, dict[str, float]]:
    """statsmodels' t-test power engine for the design, with its sample-size keyword(s)."""
    if design == "paired":
        return TTestPower(), {} if n is None else {"nobs": n}
    return TTestIndPower(), {"ratio": 1.0} | ({} if n is None else {"nobs1": n})


def power(
    n: float,
    effect: float,
    *,
    metric: Kind = "continuous",
    design: Design = "independent",
    sd: float | None = None,
    baseline: float | None = None,
    discordant: float | None = None,
    alpha: float = 0.05,
) -> float:
    """Probability of detecting `effect` with n per arm (or n pairs), two-sided at `alpha`."""
    if metric == "continuous":
        engine, sizes = _t_engine(design, n)
        return float(engine.power(effect_size=_cohen_d(effect, sd), alpha=alpha, **sizes))
    if design == "paired":
        return _mcnemar_power(n, effect, _discordant(discordant), alpha)
    h = _cohen_h(effect, baseline)
    return float(NormalIndPower().power(effect_size=h, nobs1=n, alpha=alpha, ratio=1.0))


def sample_size(
    effect: float,
    *,
    metric: Kind = "continuous",
    design: Design = "independent",
    sd: float | None = None,
    baseline: float | None = None,
    discordant: float | None = None,
    alpha: float = 0.05,
    target_power: float = 0.8,
) -> int:
    """Units per arm (pairs for paired designs) to detect `effect` with `target_power`."""
    if metric == "continuous":
        engine, sizes = _t_engine(design)
        n = engine.solve_power(effect_size=_cohen_d(effect, sd), alpha=alpha, power=target_power, **sizes)
        return math.ceil(float(n))
    if design == "paired":
        p = _discordant(discordant)
        z_alpha, z_beta = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(target_power)
        n = (z_alpha * math.sqrt(p) + z_beta * math.sqrt(p - effect**2)) ** 2 / effect**2
        return math.ceil(n)
    n = NormalIndPower().solve_power(
        effect_size=_cohen_h(effect, baseline), alpha=alpha, power=target_power, ratio=1.0
    )
    return math.ceil(float(n))


def minimum_detectable_effect(
    n: float,
    *,
    metric: Kind = "continuous",
    design: Design = "independent",
    sd: float | None = None,
    baseline: float | None = None,
    discordant: float | None = None,
    alpha: float = 0.05,
    target_power: float = 0.8,
) -> float:
    """The smallest effect (in the metric's units) detected with `target_power` at n per arm."""
    if metric == "continuous":
        if sd is None or sd <= 0:
            raise AnalysisError("a continuous MDE needs the standard deviation (sd > 0)")
        engine, sizes = _t_engine(design, n)
        d = engine.solve_power(effect_size=None, alpha=alpha, power=target_power, **sizes)
        return float(d) * sd
    upper = (1.0 - (baseline or 0.0)) if design == "independent" else math.sqrt(_discordant(discordant))
    return float(
        optimize.brentq(
            lambda e: (
                power(
                    n,
                    e,
                    metric="binary",
                    design=design,
                    baseline=baseline,
                    discordant=discordant,
                    alpha=alpha,
                )
                - target_power
            ),
            1e-9,
            upper - 1e-9,
        )
    )


def _cohen_d(effect: float, sd: float | None) -> float:
    if sd is None or sd <= 0:
        raise AnalysisError("a continuous power calculation needs the standard deviation (sd > 0)")
    return effect / sd


def _cohen_h(effect: float, baseline: float | None) -> float:
    if baseline is None or not 0 < baseline < 1 or not 0 < baseline + effect < 1:
        raise AnalysisError("a binary power calculation needs 0 < baseline < 1 and 0 < baseline + effect < 1")
    return float(proportion_effectsize(baseline + effect, baseline))


def _discordant(discordant: float | None) -> float:
    if discordant is None or not 0 < discordant <= 1:
        raise AnalysisError("a paired binary (McNemar) calculation needs the discordant-pair probability")
    return discordant


def _mcnemar_power(n: float, effect: float, discordant: float, alpha: float) -> float:
    if effect**2 >= discordant:
        return 1.0
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z = (abs(effect) * math.sqrt(n) - z_alpha * math.sqrt(discordant)) / math.sqrt(discordant - effect**2)
    return float(stats.norm.cdf(z))
