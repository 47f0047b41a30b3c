"""Group-sequential designs: a fixed number of planned looks with boundaries that keep the overall
false-positive rate at alpha. Pocock (1977) and O'Brien-Fleming (1979) boundaries, and Lan-DeMets
(1983) alpha spending for looks at any (unequally spaced) information fractions.

    design = obrien_fleming(4)                     # 4 equally spaced looks, two-sided 5%
    design = alpha_spending([0.2, 0.45, 0.7, 1.0], spending="obrien-fleming")
    design.upper                                   # z boundaries per look
    design.decide(z=2.9, look=2)                   # "stop: reject" or "continue"
    design.inflation_factor(power=0.8)             # max sample size / fixed-design sample size

Conventions. Looks are at information fractions 0 < t_1 < ... < t_K <= 1; the z statistics have
the canonical joint distribution (Jennison & Turnbull, 2000, ch. 3): Z_k = S_k / sqrt(t_k), S a
Brownian motion with drift `drift` (the expected z at t = 1). Crossing probabilities are computed
by recursive numerical integration (Armitage, McPherson & Rowe, 1969) on a Simpson grid, the
method of Jennison & Turnbull (2000, ch. 19) and of R's gsDesign and ldbounds. Two-sided designs
are symmetric and spend alpha / 2 on each side. Lan-DeMets spending functions, per side with
level a: O'Brien-Fleming type 2 - 2 Phi(z_{1-a/2} / sqrt(t)), Pocock type a ln(1 + (e - 1) t),
power family a t^rho (as ldbounds' iuse 1, 2, 3).

No library that Python users can rely on implements these (statsmodels and scipy do not;
the PyPI ports of gsDesign are young), so the integration is written here and checked against
the published tables and the R packages' documented outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, stats

from orchestra.analysis.ab._data import check_alpha
from orchestra.errors import AnalysisError

GRID_POINTS = 501  # odd, for Simpson's rule; ~1e-7 accuracy on crossing probabilities
Spending = Literal["obrien-fleming", "pocock", "linear"] | Callable[[float, float], float]


@dataclass(frozen=True)
class Crossing:
    """Per look: probability of stopping there across the upper (B better) and lower boundary."""

    upper: tuple[float, ...]
    lower: tuple[float, ...]

    @property
    def total(self) -> float:
        return float(sum(self.upper) + sum(self.lower))


@dataclass(frozen=True)
class GroupSequentialDesign:
    """Boundaries on the z scale for planned looks at information `fractions`."""

    kind: str
    fractions: tuple[float, ...]
    upper: tuple[float, ...]
    lower: tuple[float, ...]
    alpha: float
    sides: int
    cumulative_alpha: tuple[float, ...] = field(default=())

    @property
    def nominal_alpha(self) -> tuple[float, ...]:
        """The nominal p-value threshold of each look taken on its own."""
        return tuple(float(self.sides * stats.norm.sf(b)) for b in self.upper)

    def crossing(self, drift: float = 0.0) -> Crossing:
        """Exit probabilities per look when the expected z at t = 1 is `drift` (0: the null)."""
        return _crossing(self.fractions, self.upper, self.lower, drift)

    def power(self, drift: float) -> float:
        """Probability of stopping for B at some look (crossing the upper boundary)."""
        return float(sum(self.crossing(drift).upper))

    def drift_for_power(self, power: float = 0.8) -> float:
        check_alpha(power, "power")
        return float(optimize.brentq(lambda d: self.power(d) - power, 0.0, 20.0, xtol=1e-10))

    def inflation_factor(self, power: float = 0.8) -> float:
        """Maximum information over that of a fixed design with the same alpha and power."""
        fixed = stats.norm.ppf(1 - self.alpha / self.sides) + stats.norm.ppf(power)
        return (self.drift_for_power(power) / fixed) ** 2

    def decide(self, z: float, look: int) -> str:
        """'stop: B better', 'stop: A better' or 'continue' for z (B - A) at look 1..K."""
        if not 1 <= look <= len(self.upper):
            raise AnalysisError(f"look must be between 1 and {len(self.upper)} (got {look})")
        if z >= self.upper[look - 1]:
            return "stop: B better"
        if z <= self.lower[look - 1]:
            return "stop: A better"
        return "continue" if look < len(self.upper) else "stop: no difference shown"


def pocock(looks: int, alpha: float = 0.05, sides: int = 2) -> GroupSequentialDesign:
    """Pocock's constant boundary for `looks` equally spaced looks."""
    fractions = _equal(looks)
    return _constant_shape("Pocock", fractions, np.ones(looks), alpha, sides)


def obrien_fleming(
    looks: int | Sequence[float], alpha: float = 0.05, sides: int = 2
) -> GroupSequentialDesign:
    """O'Brien-Fleming's boundary c / sqrt(t_k) (c sqrt(K / k) for equally spaced looks)."""
    fractions = _equal(looks) if isinstance(looks, int) else _fractions(looks)
    return _constant_shape("O'Brien-Fleming", fractions, 1 / np.sqrt(fractions), alpha, sides)


def alpha_spending(
    fractions: int | Sequence[float],
    *,
    spending: Spending = "obrien-fleming",
    alpha: float = 0.05,
    sides: int = 2,
    rho: float = 1.0,
) -> GroupSequentialDesign:
    """Lan-DeMets boundaries: at each look, spend alpha(t_k) - alpha(t_{k-1}) (per side).

    `spending` is "obrien-fleming", "pocock", "linear" (power family alpha * t^rho) or a function
    f(t, a) -> cumulative alpha spent at t for a total level a (increasing, f(1, a) = a).
    """
    check_alpha(alpha)
    _check_sides(sides)
    times = _equal(fractions) if isinstance(fractions, int) else _fractions(fractions)
    side_alpha = alpha / sides
    function = _spending_function(spending, rho)
    spent = [function(float(t), side_alpha) for t in times]
    if (
        any(b < a - 1e-15 for a, b in zip([0.0, *spent], spent, strict=False))
        or spent[-1] > side_alpha + 1e-12
    ):
        raise AnalysisError("a spending function must be increasing and spend at most alpha")
    upper: list[float] = []
    for k in range(len(times)):
        target = spent[k] - (spent[k - 1] if k else 0.0)
        upper.append(_solve_bound(times[: k + 1], upper, target, sides))
    lower = [-b for b in upper] if sides == 2 else [-math.inf] * len(upper)
    name = spending if isinstance(spending, str) else getattr(spending, "__name__", "custom")
    cumulative = tuple(sides * s for s in spent)
    return GroupSequentialDesign(
        f"Lan-DeMets {name} spending", tuple(times), tuple(upper), tuple(lower), alpha, sides, cumulative
    )


def _spending_function(spending: Spending, rho: float) -> Callable[[float, float], float]:
    if callable(spending):
        return spending
    if spending == "obrien-fleming":
        return lambda t, a: float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - a / 2) / math.sqrt(t)))
    if spending == "pocock":
        return lambda t, a: float(a * math.log(1 + (math.e - 1) * t))
    if spending == "linear":
        if not rho > 0:
            raise AnalysisError(f"rho must be positive (got {rho!r})")
        return lambda t, a: float(a * t**rho)
    raise AnalysisError(
        f"spending must be 'obrien-fleming', 'pocock', 'linear' or a function (got {spending!r})"
    )


def _constant_shape(
    kind: str, fractions: np.ndarray, shape: np.ndarray, alpha: float, sides: int
) -> GroupSequentialDesign:
    check_alpha(alpha)
    _check_sides(sides)

    def excess(c: float) -> float:
        upper = c * shape
        lower = -upper if sides == 2 else np.full_like(upper, -math.inf)
        return _crossing(tuple(fractions), tuple(upper), tuple(lower), 0.0).total - alpha

    c = optimize.brentq(excess, 0.5, 10.0, xtol=1e-10)
    upper = c * shape
    lower = -upper if sides == 2 else np.full_like(upper, -math.inf)
    crossing = _crossing(tuple(fractions), tuple(upper), tuple(lower), 0.0)
    cumulative = np.cumsum(np.add(crossing.upper, crossing.lower))
    return GroupSequentialDesign(
        kind,
        tuple(float(t) for t in fractions),
        tuple(float(b) for b in upper),
        tuple(float(b) for b in lower),
        alpha,
        sides,
        tuple(float(a) for a in cumulative),
    )


def _solve_bound(times: np.ndarray, previous: list[float], target: float, sides: int) -> float:
    """The boundary at the last of `times` that spends exactly `target` (per side) there."""
    if target <= 1e-15:
        return math.inf
    walk = _Walk(0.0)
    for t, b in zip(times[:-1], previous, strict=False):
        walk.look(float(t), b, -b if sides == 2 else -math.inf)
    t = float(times[-1])

    def excess(b: float) -> float:
        up, down = walk.exit(t, b, -b if sides == 2 else -math.inf)
        return up + down - sides * target

    return float(optimize.brentq(excess, 0.0, 40.0, xtol=1e-10))


def _crossing(
    times: Sequence[float], upper: Sequence[float], lower: Sequence[float], drift: float
) -> Crossing:
    """Exit probabilities at every look (recursive numerical integration)."""
    walk = _Walk(drift)
    exits = [walk.look(float(t), b, a) for t, b, a in zip(times, upper, lower, strict=True)]
    return Crossing(tuple(e[0] for e in exits), tuple(e[1] for e in exits))


class _Walk:
    """The sub-density of Z_k on paths that have not stopped yet, advanced look by look
    (Armitage, McPherson & Rowe, 1969; Jennison & Turnbull, 2000, ch. 19)."""

    def __init__(self, drift: float) -> None:
        self.drift = drift
        self.t = 0.0
        self.grid: np.ndarray | None = None
        self.mass: np.ndarray | None = None  # Simpson weight x density at each grid point

    def exit(self, t: float, upper: float, lower: float) -> tuple[float, float]:
        """(P(cross upper at t), P(cross lower at t)) without moving on."""
        norm = stats.norm
        if self.grid is None:
            mean = self.drift * math.sqrt(t)
            return float(norm.sf(upper - mean)), float(norm.cdf(lower - mean))
        step = t - self.t
        shift = self.grid * math.sqrt(self.t) + self.drift * step
        up = self.mass @ norm.sf((upper * math.sqrt(t) - shift) / math.sqrt(step))
        down = self.mass @ norm.cdf((lower * math.sqrt(t) - shift) / math.sqrt(step))
        return float(up), float(down)

    def look(self, t: float, upper: float, lower: float) -> tuple[float, float]:
        """Exit probabilities at t, then condition on continuing."""
        exits = self.exit(t, upper, lower)
        centre = self.drift * math.sqrt(t)
        grid, weights = _simpson(max(lower, centre - 10), min(upper, centre + 10))
        if self.grid is None:
            density = stats.norm.pdf(grid - centre)
        else:
            step = t - self.t
            shift = self.grid * math.sqrt(self.t) + self.drift * step
            kernel = stats.norm.pdf((grid[:, None] * math.sqrt(t) - shift[None, :]) / math.sqrt(step))
            density = kernel @ self.mass * math.sqrt(t / step)
        self.grid, self.mass, self.t = grid, weights * density, t
        return exits


def _simpson(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    if high <= low:
        return np.array([low]), np.array([0.0])
    grid = np.linspace(low, high, GRID_POINTS)
    weights = np.ones(GRID_POINTS)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return grid, weights * (high - low) / (GRID_POINTS - 1) / 3


def _equal(looks: int) -> np.ndarray:
    if not isinstance(looks, int) or looks < 1:
        raise AnalysisError(f"the number of looks must be a positive whole number (got {looks!r})")
    return np.arange(1, looks + 1) / looks


def _fractions(fractions: Sequence[float]) -> np.ndarray:
    times = np.asarray(fractions, dtype=float)
    if times.ndim != 1 or times.size == 0 or not np.isfinite(times).all():
        raise AnalysisError("information fractions must be a non-empty list of numbers")
    if times[0] <= 0 or times[-1] > 1 or (np.diff(times) <= 0).any():
        raise AnalysisError(
            f"information fractions must increase strictly within (0, 1] (got {times.tolist()})"
        )
    return times


def _check_sides(sides: int) -> None:
    if sides not in (1, 2):
        raise AnalysisError(f"sides must be 1 or 2 (got {sides!r})")
