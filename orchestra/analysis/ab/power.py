"""Planning: power, sample size and minimum detectable effect (statsmodels underneath).

    sample_size(effect=0.05, sd=0.4)                          # per arm, independent means
    sample_size(effect=0.05, sd=0.3, design="paired")         # pairs; sd of the differences
    sample_size(effect=0.05, baseline=0.20, metric="binary")  # per arm, two proportions
    minimum_detectable_effect(n=400, sd=0.4, design="paired")

Power formulas: means use the noncentral t distribution (statsmodels `TTestIndPower` for two
independent arms of equal size, `TTestPower` for pairs, whose `sd` is that of the
differences); two independent proportions use Cohen's arcsine effect size h with the normal
approximation (`NormalIndPower`); paired binary outcomes (McNemar) use the normal approximation
of Connor (1987, Biometrics 43:207-211) with the discordant-pair probability. `alternative`
"two-sided" (default), "greater" or "less" (the sign of `effect` must match a one-sided one).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
from statsmodels.stats.proportion import proportion_effectsize

from orchestra.analysis.ab._data import Alternative, check_alpha, check_alternative, check_count
from orchestra.errors import AnalysisError

Design = Literal["independent", "paired"]
Kind = Literal["continuous", "binary"]
_SIDES = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def _t_engine(design: Design, n: float | None = None) -> tuple[TTestPower | TTestIndPower, dict[str, float]]:
    """statsmodels' t-test power engine for the design, with its sample-size keyword(s)."""
    if design == "paired":
        return TTestPower(), {} if n is None else {"nobs": n}
    return TTestIndPower(), {"ratio": 1.0} | ({} if n is None else {"nobs1": n})


def _check(metric: str, design: str, alpha: float, alternative: str, n: float | None = None) -> Alternative:
    if metric not in ("continuous", "binary"):
        raise AnalysisError(f"metric must be 'continuous' or 'binary' (got {metric!r})")
    if design not in ("independent", "paired"):
        raise AnalysisError(f"design must be 'independent' or 'paired' (got {design!r})")
    check_alpha(alpha)
    if n is not None:
        check_count(n, "n (units per arm, or pairs)", minimum=2)
    return check_alternative(alternative)


def _check_effect(effect: float, nonzero: bool) -> float:
    effect = check_count(effect, "effect", minimum=-math.inf)
    if nonzero and effect == 0:
        raise AnalysisError("effect must be non-zero: no sample size detects a zero difference")
    return effect


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
    alternative: Alternative = "two-sided",
) -> float:
    """Probability of detecting `effect` with n per arm (or n pairs) at `alpha`; settings where
    the formula breaks down numerically (e.g. alpha = 1e-300) raise an AnalysisError."""
    alternative = _check(metric, design, alpha, alternative, n)
    effect = _check_effect(effect, nonzero=False)
    if metric == "continuous":
        engine, sizes = _t_engine(design, n)
        value = engine.power(
            effect_size=_cohen_d(effect, sd), alpha=alpha, alternative=_SIDES[alternative], **sizes
        )
    elif design == "paired":
        value = _mcnemar_power(n, effect, _discordant(discordant), alpha, alternative)
    else:
        h = _cohen_h(effect, baseline)
        value = NormalIndPower().power(
            effect_size=h, nobs1=n, alpha=alpha, ratio=1.0, alternative=_SIDES[alternative]
        )
    if not math.isfinite(value):
        raise AnalysisError(f"power is not computable for n={n!r}, effect={effect!r}, alpha={alpha!r}")
    return float(value)


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
    alternative: Alternative = "two-sided",
) -> int:
    """Units per arm (pairs for paired designs) to detect `effect` with `target_power`."""
    alternative = _check(metric, design, alpha, alternative)
    check_alpha(target_power, "target_power")
    effect = _check_effect(effect, nonzero=True)
    if metric == "continuous":
        engine, sizes = _t_engine(design)
        n = engine.solve_power(
            effect_size=_cohen_d(effect, sd),
            alpha=alpha,
            power=target_power,
            alternative=_SIDES[alternative],
            **sizes,
        )
        return math.ceil(float(n))
    if design == "paired":
        p = _discordant(discordant)
        if effect**2 >= p:
            raise AnalysisError(
                f"a paired effect of {effect} needs a discordant probability above {effect**2}"
            )
        tail = alpha / 2 if alternative == "two-sided" else alpha
        z_alpha, z_beta = stats.norm.ppf(1 - tail), stats.norm.ppf(target_power)
        n = (z_alpha * math.sqrt(p) + z_beta * math.sqrt(p - effect**2)) ** 2 / effect**2
        return math.ceil(n)
    n = NormalIndPower().solve_power(
        effect_size=_cohen_h(effect, baseline),
        alpha=alpha,
        power=target_power,
        ratio=1.0,
        alternative=_SIDES[alternative],
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
    """The smallest effect (in the metric's units) detected with `target_power` at n per arm
    (two-sided). For binary metrics the largest possible effect is searched; if even that is not
    detected at this n, the error says so."""
    _check(metric, design, alpha, "two-sided", n)
    check_alpha(target_power, "target_power")
    if metric == "continuous":
        if sd is None or sd <= 0:
            raise AnalysisError("a continuous MDE needs the standard deviation (sd > 0)")
        engine, sizes = _t_engine(design, n)
        d = engine.solve_power(effect_size=None, alpha=alpha, power=target_power, **sizes)
        return float(np.asarray(d).reshape(-1)[0]) * sd  # statsmodels may return a 1-element array
    upper = (1.0 - (baseline or 0.0)) if design == "independent" else math.sqrt(_discordant(discordant))

    def shortfall(e: float) -> float:
        achieved = power(
            n, e, metric="binary", design=design, baseline=baseline, discordant=discordant, alpha=alpha
        )
        return achieved - target_power

    if shortfall(upper - 1e-9) < 0:
        raise AnalysisError(
            f"with n={n:g} no effect up to {upper:.4g} reaches {target_power:.0%} power; increase n"
        )
    return float(optimize.brentq(shortfall, 1e-9, upper - 1e-9))


def _cohen_d(effect: float, sd: float | None) -> float:
    if sd is None or not math.isfinite(sd) or sd <= 0:
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


def _mcnemar_power(n: float, effect: float, discordant: float, alpha: float, alternative: str) -> float:
    if (alternative == "greater" and effect <= 0) or (alternative == "less" and effect >= 0):
        return float(alpha) if effect == 0 else 0.0
    if effect**2 >= discordant:
        return 1.0
    tail = alpha / 2 if alternative == "two-sided" else alpha
    z_alpha = stats.norm.ppf(1 - tail)
    z = (abs(effect) * math.sqrt(n) - z_alpha * math.sqrt(discordant)) / math.sqrt(discordant - effect**2)
    return float(stats.norm.cdf(z))
