"""Budget- and quality-targeted routing: pick the trade-off that meets a spend or quality target,
and watch the realised spend at run time.

    target = Target(budget_per_1k=2.0)                     # dollars per 1,000 requests
    pick = calibrate_trade_off(utilities_for, realised_quality, realised_cost, target)
    pick.value, pick.spend_per_1k, pick.quality           # measured on the select split

    monitor = SpendMonitor(target_per_1k=2.0)
    monitor.observe(cost_usd)                              # a `SpendDrift` when it leaves +-20%

A trade-off is any one-parameter family of routing choices whose spend falls as the parameter
grows (the learned router's cost weight, a cascade's acceptance threshold). The parameter is
calibrated on prompts with full information (every provider's quality and cost recorded), so the
spend and quality of each setting are measured, not predicted:

- a budget: the setting that spends the most within the budget (spend the budget: on a flat
  quality curve "the best quality under the budget" picks noise, often far below it);
- a quality target: the cheapest setting whose mean quality still reaches the target.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from orchestra.logs import get_logger

if TYPE_CHECKING:
    import polars as pl

logger = get_logger("orchestra.routing")

DEFAULT_COST_WEIGHTS: tuple[float, ...] = (0.0, *np.geomspace(0.01, 1e6, 161).tolist())
"""The cost-weight grid searched for a target (quality per dollar, from "ignore cost" to "cheapest")."""


@dataclass(frozen=True)
class Target:
    """What the trade-off is chosen for: a spend per 1,000 requests, or a mean quality."""

    budget_per_1k: float | None = None
    quality_target: float | None = None
    configured: bool = True
    """False for a target derived from the current config (`improvement.objective`), which is
    not written into the improved config as a budget to hold."""

    def __post_init__(self) -> None:
        if self.budget_per_1k is not None and self.quality_target is not None:
            raise ValueError("set a budget or a quality target, not both")

    @property
    def kind(self) -> str:
        if self.budget_per_1k is not None:
            return "budget"
        return "quality" if self.quality_target is not None else "none"

    def __str__(self) -> str:
        if self.budget_per_1k is not None:
            return f"budget ${self.budget_per_1k:g} per 1k requests"
        if self.quality_target is not None:
            return f"quality target {self.quality_target:g}"
        return "no target"


@dataclass(frozen=True)
class TradeOffPick:
    """The chosen setting, what it spent and scored where it was calibrated, and the whole curve."""

    value: float
    spend_per_1k: float
    quality: float
    met: bool
    target: Target
    curve: pl.DataFrame  # value, spend_per_1k, quality

    def __str__(self) -> str:
        state = "met" if self.met else "NOT met (closest setting)"
        return (
            f"{self.target}: {state} at {self.value:g} "
            f"(spend ${self.spend_per_1k:.4f}/1k, quality {self.quality:.4f})"
        )


def trade_off_curve(
    choose: Callable[[float], np.ndarray],
    realised_quality: np.ndarray,
    realised_cost: np.ndarray,
    values: Sequence[float],
) -> pl.DataFrame:
    """Spend per 1k and mean quality of `choose(value)` (a column index per prompt) for each value."""
    import polars as pl

    rows = []
    index = np.arange(realised_quality.shape[0])
    for value in values:
        columns = choose(value)
        quality = realised_quality[index, columns]
        cost = realised_cost[index, columns]
        rows.append((float(value), float(np.nanmean(cost)) * 1000.0, float(np.nanmean(quality))))
    return pl.DataFrame(rows, schema=["value", "spend_per_1k", "quality"], orient="row")


def pick_setting(curve: pl.DataFrame, target: Target) -> TradeOffPick:
    """The row of `curve` (value, spend_per_1k, quality) for `target`; any order of values.

    Budget: the largest spend within it (the better quality on ties). Quality target: the
    smallest spend that reaches it. Neither: the best quality, the cheaper on ties. When the
    target cannot be met, the closest setting is returned with `met=False`."""
    import polars as pl

    by_spend = curve.sort(["spend_per_1k", "quality"], descending=[True, True])
    best = curve.sort(["quality", "spend_per_1k"], descending=[True, False])
    if target.budget_per_1k is not None:
        within = by_spend.filter(pl.col("spend_per_1k") <= target.budget_per_1k + 1e-12)
        met = not within.is_empty()
        row = within.row(0, named=True) if met else by_spend.row(-1, named=True)
    elif target.quality_target is not None:
        reaching = by_spend.filter(pl.col("quality") >= target.quality_target - 1e-12)
        met = not reaching.is_empty()
        row = reaching.row(-1, named=True) if met else best.row(0, named=True)
    else:
        row, met = best.row(0, named=True), True
    return TradeOffPick(row["value"], row["spend_per_1k"], row["quality"], met, target, curve)


def calibrate_cost_weight(
    estimated_quality: np.ndarray,
    estimated_cost: np.ndarray,
    realised_quality: np.ndarray,
    realised_cost: np.ndarray,
    target: Target,
    weights: Sequence[float] = DEFAULT_COST_WEIGHTS,
) -> TradeOffPick:
    """The learned router's cost weight for `target`, on prompts with full information.

    Each weight routes every prompt to argmax(estimated quality - weight x estimated cost); its
    spend and quality are the realised ones of those choices."""

    def choose(weight: float) -> np.ndarray:
        return np.argmax(estimated_quality - weight * estimated_cost, axis=1)

    return pick_setting(trade_off_curve(choose, realised_quality, realised_cost, weights), target)


@dataclass(frozen=True)
class SpendDrift:
    """The realised spend left (or came back within) the tolerance around the target."""

    realised_per_1k: float
    target_per_1k: float
    requests: int
    drifting: bool

    @property
    def drift(self) -> float:
        """Relative difference from the target (+0.25 = 25% over)."""
        return self.realised_per_1k / self.target_per_1k - 1.0 if self.target_per_1k > 0 else math.inf


class SpendMonitor:
    """Realised spend per 1,000 requests over the last `window` requests, against a target.

    `observe` returns a `SpendDrift` when the spend leaves the band target x (1 +- tolerance)
    (after `min_requests`), and again when it comes back: one warning per excursion."""

    def __init__(
        self, target_per_1k: float, *, tolerance: float = 0.2, window: int = 1000, min_requests: int = 100
    ) -> None:
        if target_per_1k <= 0:
            raise ValueError("the spend target must be positive")
        self.target_per_1k = target_per_1k
        self.tolerance = tolerance
        self.min_requests = min_requests
        self._costs: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self.requests = 0
        self.drifting = False

    @property
    def realised_per_1k(self) -> float:
        return 1000.0 * self._sum / len(self._costs) if self._costs else math.nan

    def observe(self, cost_usd: float) -> SpendDrift | None:
        if len(self._costs) == self._costs.maxlen:
            self._sum -= self._costs[0]
        self._costs.append(float(cost_usd))
        self._sum += float(cost_usd)
        self.requests += 1
        if self.requests < self.min_requests:
            return None
        realised = self.realised_per_1k
        drifting = abs(realised / self.target_per_1k - 1.0) > self.tolerance
        if drifting == self.drifting:
            return None
        self.drifting = drifting
        event = SpendDrift(realised, self.target_per_1k, self.requests, drifting)
        if drifting:
            logger.warning(
                "routing spend drifts: $%.4f per 1k requests over the last %d, target $%.4f (%+.0f%%, "
                "tolerance %.0f%%)",
                realised,
                len(self._costs),
                self.target_per_1k,
                100 * event.drift,
                100 * self.tolerance,
            )
        else:
            logger.info("routing spend is back within %.0f%% of the target", 100 * self.tolerance)
        return event
