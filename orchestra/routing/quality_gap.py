"""RouteLLM's metrics for a strong/weak pair: how much of the quality gap a router recovers per
share of calls to the strong model.

    curve = strong_share_curve(scores, strong_quality, weak_quality)   # share, quality per threshold
    apgr(curve, weak, strong); cpt(curve, 0.5, weak, strong)

As in RouteLLM's `evals/evaluate.py` and `benchmarks.py` (lm-sys/RouteLLM): a router gives each
prompt a score (higher: send it to the strong model); the thresholds are the 11 edges of 10
equal-count bins of the scores, and prompts scoring at or above a threshold (strictly above, for
the top edge) go to the strong model. PGR (performance gap recovered) is (quality - weak) /
(strong - weak). APGR is the area under the quality-vs-strong-share curve (trapezoids), less the
weak model's area, over the strong-minus-weak area; a random router scores about 0.5.
CPT(x) is the strong share at which the curve first reaches a PGR of x (linear interpolation
between curve points; RouteLLM uses `np.interp`, the same on a rising curve).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl


def strong_share_curve(
    scores: np.ndarray, strong_quality: np.ndarray, weak_quality: np.ndarray, bins: int = 10
) -> pl.DataFrame:
    """Strong-model share and mean quality at each of RouteLLM's thresholds (plus 0% and 100%)."""
    scores = np.asarray(scores, dtype=float)
    edges = np.quantile(scores, np.linspace(0, 1, bins + 1))
    rows = [(0.0, float(np.mean(weak_quality)))]
    for i, threshold in enumerate(edges):
        strong = scores > threshold if i == bins else scores >= threshold
        quality = np.where(strong, strong_quality, weak_quality)
        rows.append((float(strong.mean()), float(np.mean(quality))))
    rows.append((1.0, float(np.mean(strong_quality))))
    return (
        pl.DataFrame(rows, schema=["strong_share", "quality"], orient="row")
        .unique("strong_share", keep="first", maintain_order=True)
        .sort("strong_share")
    )


def optimal_curve(strong_quality: np.ndarray, weak_quality: np.ndarray, points: int = 101) -> pl.DataFrame:
    """The oracle's curve: the weak model everywhere, the strong one spent first where only it is right."""
    gain = np.asarray(strong_quality, float) - np.asarray(weak_quality, float)
    order = np.argsort(-gain, kind="stable")
    n = gain.size
    rows = []
    for share in np.linspace(0, 1, points):
        strong = np.zeros(n, dtype=bool)
        strong[order[: round(float(share) * n)]] = True
        rows.append((float(share), float(np.mean(np.where(strong, strong_quality, weak_quality)))))
    return pl.DataFrame(rows, schema=["strong_share", "quality"], orient="row")


def apgr(curve: pl.DataFrame, weak: float, strong: float) -> float:
    """Average performance gap recovered: the area between the curve and the weak model's line,
    over the area between the strong and the weak model's lines."""
    share, quality = curve["strong_share"].to_numpy(), curve["quality"].to_numpy()
    width = share[-1] - share[0]
    if strong == weak or width == 0:
        return math.nan
    area = float(np.trapezoid(quality, share))
    return (area - weak * width) / ((strong - weak) * width)


def cpt(curve: pl.DataFrame, pgr: float, weak: float, strong: float) -> float:
    """Call-performance threshold: the smallest strong share at which the curve reaches a PGR of
    `pgr` (NaN when it never does)."""
    target = weak + pgr * (strong - weak)
    share, quality = curve["strong_share"].to_numpy(), curve["quality"].to_numpy()
    for i in range(len(share)):
        if quality[i] >= target:
            if i == 0 or quality[i] == quality[i - 1]:
                return float(share[i])
            fraction = (target - quality[i - 1]) / (quality[i] - quality[i - 1])
            return float(share[i - 1] + fraction * (share[i] - share[i - 1]))
    return math.nan
