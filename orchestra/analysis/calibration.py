"""How well does consensus confidence predict quality? Reliability table, ECE and Brier score.

    report = calibration(requests)          # the logged request table (polars or pandas)
    report.ece, report.brier, report.table  # table: one row per confidence bin

Quality labels are in [0, 1] (AlpacaEval: 1 win, 0.5 draw, 0 loss), read as the probability
that the answer is good. Rows without a confidence or a label are dropped (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from orchestra.frames import as_frame


@dataclass(frozen=True)
class CalibrationReport:
    table: pl.DataFrame
    ece: float
    brier: float
    n: int
    dropped: int

    def _repr_html_(self) -> str:
        head = f"<p>n={self.n} (dropped {self.dropped}), ECE={self.ece:.4f}, Brier={self.brier:.4f}</p>"
        return head + self.table._repr_html_()

    def __str__(self) -> str:
        return f"n={self.n} (dropped {self.dropped}) ECE={self.ece:.4f} Brier={self.brier:.4f}\n{self.table}"


def calibration(
    frame: Any = None,
    *,
    confidence: Any = None,
    quality: Any = None,
    confidence_column: str = "confidence",
    quality_column: str = "quality",
    bins: int = 10,
) -> CalibrationReport:
    """Reliability of `confidence` for `quality`: a frame with both columns, or two arrays."""
    if frame is not None:
        data = as_frame(frame)
        confidence = data[confidence_column].to_numpy()
        quality = data[quality_column].to_numpy()
    p = np.asarray(confidence, dtype=float)
    y = np.asarray(quality, dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"confidence and quality differ in length ({p.size} vs {y.size})")
    keep = ~(np.isnan(p) | np.isnan(y))
    dropped = int((~keep).sum())
    p, y = p[keep], y[keep]
    if p.size == 0:
        raise ValueError("no row has both a confidence and a quality label")
    if (p < 0).any() or (p > 1).any() or (y < 0).any() or (y > 1).any():
        raise ValueError("confidence and quality must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count == 0:
            continue
        mean_confidence, mean_quality = float(p[members].mean()), float(y[members].mean())
        ece += count / p.size * abs(mean_confidence - mean_quality)
        rows.append((float(edges[b]), float(edges[b + 1]), count, mean_confidence, mean_quality))
    table = pl.DataFrame(
        rows, schema=["bin_low", "bin_high", "count", "mean_confidence", "mean_quality"], orient="row"
    )
    brier = float(np.mean((p - y) ** 2))
    return CalibrationReport(table=table, ece=float(ece), brier=brier, n=int(p.size), dropped=dropped)
