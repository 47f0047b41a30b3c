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

from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class WinRate:
    percent: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.percent:5.2f}% [{self.low:5.2f}, {self.high:5.2f}]"

    def _repr_html_(self) -> str:
        from orchestra.display import table_html

        row = {"win rate %": self.percent, "95% CI low": self.low, "95% CI high": self.high, "n": self.n}
        return table_html([row])


def win_rate(scores: Iterable[float | None], alpha: float = 0.05) -> WinRate:
    """Mean win score x 100 with a t-interval; missing labels (None/NaN) are dropped.

    Scores must lie in [0, 1] (an AnalysisError otherwise); the interval is clipped to [0, 100].
    """
    values = np.array([s for s in scores if s is not None and not math.isnan(s)], dtype=float)
    if values.size == 0:
        raise ValueError("win rate needs at least one labelled answer")
    outside = values[(values < 0) | (values > 1)]
    if outside.size:
        raise AnalysisError(
            f"win scores must lie in [0, 1] (1 win, 0.5 draw, 0 loss); "
            f"got {outside.size} outside, e.g. {outside[0]!r}"
        )
    mean = float(values.mean()) * 100.0
    if values.size == 1 or float(values.std()) == 0.0:
        return WinRate(mean, mean, mean, int(values.size))
    low, high = DescrStatsW(values).tconfint_mean(alpha=alpha)
    return WinRate(mean, max(float(low), 0.0) * 100.0, min(float(high), 1.0) * 100.0, int(values.size))


@dataclass(frozen=True)
class LengthControlledWinRate:
    """The raw win rate, and the win rate the judge would give at equal answer lengths."""

    raw: WinRate
    percent: float
    low: float
    high: float
    length_coefficient: float
    length_p_value: float

    def __str__(self) -> str:
        return (
            f"length-controlled {self.percent:5.2f}% [{self.low:5.2f}, {self.high:5.2f}] "
            f"(raw {self.raw}; length effect {self.length_coefficient:+.3f}, p={self.length_p_value:.2g})"
        )

    def _repr_html_(self) -> str:
        from orchestra.display import table_html

        rows = [
            {
                "win rate": "raw",
                "%": self.raw.percent,
                "95% CI low": self.raw.low,
                "95% CI high": self.raw.high,
            },
            {
                "win rate": "length-controlled",
                "%": self.percent,
                "95% CI low": self.low,
                "95% CI high": self.high,
            },
        ]
        note = f"<p>length effect {self.length_coefficient:+.3f}, p={self.length_p_value:.2g}</p>"
        return table_html(rows) + note


def length_controlled_win_rate(
    scores: Iterable[float | None],
    lengths: Iterable[float],
    reference_lengths: Iterable[float],
    alpha: float = 0.05,
) -> LengthControlledWinRate:
    """Win rate at zero length difference, from a logistic regression of the win score on
    tanh(length difference / its standard deviation) (the length term of AlpacaEval's
    length-controlled win rate, Dubois et al. 2024, without its instruction terms).

    Rows without a label are dropped; fractional scores (draws = 0.5) are fitted as proportions.
    """
    import statsmodels.api as sm
    from scipy.special import expit

    table = np.array(
        [
            (s, n, r)
            for s, n, r in zip(scores, lengths, reference_lengths, strict=True)
            if s is not None and not math.isnan(s)
        ],
        dtype=float,
    )
    if len(table) < 3:
        raise ValueError("a length-controlled win rate needs at least three labelled answers")
    y, delta = table[:, 0], table[:, 1] - table[:, 2]
    spread = delta.std()
    x = np.tanh(delta / spread) if spread > 0 else np.zeros_like(delta)
    design = sm.add_constant(x, has_constant="add")
    fit = sm.GLM(y, design, family=sm.families.Binomial()).fit()
    intercept_low, intercept_high = fit.conf_int(alpha=alpha)[0]
    return LengthControlledWinRate(
        raw=win_rate(y, alpha=alpha),
        percent=float(expit(fit.params[0]) * 100),
        low=float(expit(intercept_low) * 100),
        high=float(expit(intercept_high) * 100),
        length_coefficient=float(fit.params[1]),
        length_p_value=float(fit.pvalues[1]),
    )
