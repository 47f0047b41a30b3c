"""Plots (matplotlib): the cost-quality frontier, effects with CIs, latency per provider, and who
answered over time. Each returns a matplotlib Figure and leaves its input untouched.

    frontier_plot(points)            # points: name, cost, quality (+ kind: arm / provider)
    effects_plot(report)             # an ABReport
    latency_plot(calls_table(requests))
    routing_shares_plot(requests, every="1h")
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # headless by default; Jupyter's inline backend still wins
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from orchestra.analysis.ab.result import ABReport
from orchestra.frames import as_frame


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (no other point is cheaper and at least as good)."""
    order = np.lexsort((-quality, cost))
    front, best = [], -np.inf
    for index in order:
        if quality[index] > best:
            front.append(index)
            best = quality[index]
    return np.array(front, dtype=int)


def frontier_plot(
    points: Any,
    *,
    cost: str = "cost",
    quality: str = "quality",
    name: str = "name",
    kind: str | None = "kind",
    title: str = "Cost versus quality",
) -> plt.Figure:
    """Each arm / provider as a point; the non-dominated ones joined and highlighted."""
    frame = points if isinstance(points, pl.DataFrame) else pl.DataFrame(points)
    x, y = frame[cost].to_numpy().astype(float), frame[quality].to_numpy().astype(float)
    labels = frame[name].to_list()
    kinds = frame[kind].to_list() if kind and kind in frame.columns else ["point"] * len(labels)
    front = pareto_front(x, y)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for group, marker in zip(sorted(set(kinds)), "osD^v<>", strict=False):
        members = [i for i, k in enumerate(kinds) if k == group]
        axis.scatter(x[members], y[members], marker=marker, s=50, alpha=0.6, label=group)
    axis.plot(x[front], y[front], "-", color="black", linewidth=1, label="non-dominated")
    axis.scatter(x[front], y[front], s=120, facecolors="none", edgecolors="black")
    for i, label in enumerate(labels):
        axis.annotate(str(label), (x[i], y[i]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    axis.set_xscale("log" if (x > 0).all() and x.max() / max(x.min(), 1e-12) > 50 else "linear")
    axis.set_xlabel(cost)
    axis.set_ylabel(quality)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def effects_plot(report: ABReport, *, title: str = "Effects against the control (95% CI)") -> plt.Figure:
    """One row per comparison: the effect and its interval; significant ones in bold colour."""
    results = list(report)
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(results) + 1.2))
    for row, result in enumerate(results):
        colour = "tab:red" if result.significant else "tab:gray"
        axis.errorbar(
            result.effect,
            row,
            xerr=[[result.effect - result.ci_low], [result.ci_high - result.effect]],
            fmt="o",
            color=colour,
            capsize=3,
        )
    null = [1.0 if r.effect_kind in ("ratio", "odds_ratio") else 0.0 for r in results]
    if len(set(null)) == 1:
        axis.axvline(null[0], color="black", linewidth=0.8, linestyle="--")
    axis.set_yticks(range(len(results)), [f"{r.metric}: {r.arm_b} vs {r.arm_a}" for r in results], fontsize=8)
    axis.invert_yaxis()
    axis.set_title(title)
    figure.tight_layout()
    return figure


def latency_plot(calls: Any, *, provider: str = "provider", latency: str = "latency_ms") -> plt.Figure:
    """Latency distribution per provider (successful calls), log scale: box plots with the points."""
    frame = as_frame(calls)
    if "ok" in frame.columns:
        frame = frame.filter(pl.col("ok"))
    groups = frame.partition_by(provider, as_dict=True)
    names = sorted(str(key[0]) for key in groups)
    data = [groups[(name,)][latency].to_numpy() for name in names]
    figure, axis = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    axis.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=False)
    for row, values in enumerate(data, start=1):
        jitter = np.random.default_rng(row).uniform(-0.15, 0.15, len(values))
        axis.scatter(values, row + jitter, s=3, alpha=0.3)
    if all((v > 0).all() for v in data if len(v)):
        axis.set_xscale("log")
    axis.set_xlabel(f"{latency} (log scale)")
    axis.set_title("Latency per provider")
    figure.tight_layout()
    return figure


def routing_shares_plot(requests: Any, *, every: str = "1h", by: str = "answered_by") -> plt.Figure:
    """Share of requests answered by each provider, per time bucket (stacked)."""
    frame = as_frame(requests)
    counts = (
        frame.drop_nulls(by)
        .with_columns(pl.col("timestamp").dt.truncate(every).alias("bucket"))
        .group_by("bucket", by)
        .len()
        .pivot(on=by, index="bucket", values="len")
        .fill_null(0)
        .sort("bucket")
    )
    providers = [c for c in counts.columns if c != "bucket"]
    totals = counts.select(providers).sum_horizontal().to_numpy()
    shares = [counts[p].to_numpy() / np.maximum(totals, 1) for p in providers]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.stackplot(counts["bucket"].to_list(), shares, labels=providers, alpha=0.85)
    axis.set_ylim(0, 1)
    axis.set_ylabel("share of requests")
    axis.set_title(f"Who answered, per {every}")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure
