"""Win rate against a reference, with a 95% confidence interval.

Quality labels are per-prompt win scores in [0, 1] (AlpacaEval: 1 win, 0.5 draw, 0 loss);
the win rate is their mean in percent, as the AlpacaEval leaderboard computes it.

    win_rate([1.0, 0.0, 0.5, 1.0])   # WinRate(percent=62.5, low=..., high=..., n=4)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.weightstats import DescrStatsW


@dataclass(frozen=True)
class WinRate:
    percent: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.percent:5.2f}% [{self.low:5.2f}, {self.high:5.2f}]"


def win_rate(scores: Iterable[float | None], alpha: float = 0.05) -> WinRate:
    """Mean win score x 100 with a t-interval; missing labels (None/NaN) are dropped."""
    values = np.array([s for s in scores if s is not None and not math.isnan(s)], dtype=float)
    if values.size == 0:
        raise ValueError("win rate needs at least one labelled answer")
    mean = float(values.mean()) * 100.0
    if values.size == 1 or float(values.std()) == 0.0:
        return WinRate(mean, mean, mean, int(values.size))
    low, high = DescrStatsW(values).tconfint_mean(alpha=alpha)
    return WinRate(mean, float(low) * 100.0, float(high) * 100.0, int(values.size))
