"""Summaries of logged requests: overall performance and a per-provider comparison.

performance_metrics(requests)     # {"total_requests": ..., "success_rate": ..., "best_provider": ...}
provider_comparison(requests)     # {"gpt-4": {"calls": ..., "success_rate": ..., ...}, ...}
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from orchestra.analysis.requests import calls_table
from orchestra.frames import as_frame


def performance_metrics(requests: Any) -> dict[str, Any]:
    """Latency (mean and quantiles), volume, success rate, cost, and the best provider."""
    frame = as_frame(requests)
    if frame.height == 0:
        return {"total_requests": 0, "success_rate": None, "best_provider": None}
    ok = frame.filter(pl.col("status") == "ok")
    latency = ok["latency_ms"] if ok.height else pl.Series([], dtype=pl.Float64)
    comparison = provider_comparison(frame)
    return {
        "total_requests": frame.height,
        "successful_requests": ok.height,
        "success_rate": 100.0 * ok.height / frame.height,
        "avg_latency_ms": _float(latency.mean()),
        "p50_latency_ms": _float(latency.quantile(0.5)),
        "p95_latency_ms": _float(latency.quantile(0.95)),
        "p99_latency_ms": _float(latency.quantile(0.99)),
        "avg_processing_time_ms": _float(frame["processing_time_ms"].mean()),
        "total_cost_usd": _float(frame["cost_usd"].sum()),
        "avg_cost_usd": _float(frame["cost_usd"].mean()),
        "mean_quality": _float(frame["quality"].mean()),
        "consensus_rate": _float(frame["consensus_applied"].cast(pl.Float64).mean()),
        "best_provider": best_provider(comparison),
        "providers": comparison,
    }


def provider_comparison(requests: Any) -> dict[str, dict[str, Any]]:
    """Per provider: calls, success rate, latency (mean and p95), cost, mean quality, answers chosen."""
    frame = as_frame(requests)
    if frame.height == 0:
        return {}
    calls = calls_table(frame)
    chosen = (
        frame.group_by("answered_by").len().rename({"answered_by": "provider", "len": "answers_returned"})
    )
    summary = (
        calls.group_by("provider")
        .agg(
            pl.len().alias("calls"),
            (pl.col("ok").cast(pl.Float64).mean() * 100).alias("success_rate"),
            pl.col("latency_ms").filter(pl.col("ok")).mean().alias("avg_latency"),
            pl.col("latency_ms").filter(pl.col("ok")).quantile(0.95).alias("p95_latency"),
            pl.col("cost_usd").mean().alias("avg_cost_usd"),
            pl.col("cost_usd").sum().alias("total_cost_usd"),
            pl.col("quality").mean().alias("mean_quality"),
            pl.col("attempts").mean().alias("avg_attempts"),
        )
        .join(chosen, on="provider", how="left")
        .with_columns(pl.col("answers_returned").fill_null(0))
        .sort("provider")
    )
    return {
        row.pop("provider"): {k: _float(v) for k, v in row.items()} for row in summary.iter_rows(named=True)
    }


def best_provider(comparison: dict[str, dict[str, Any]]) -> str | None:
    """Highest mean quality where labels exist, else highest success rate, then lowest latency."""
    if not comparison:
        return None

    def key(item: tuple[str, dict[str, Any]]) -> tuple[float, float, float]:
        stats = item[1]
        quality = stats.get("mean_quality")
        return (
            quality if quality is not None else -1.0,
            stats.get("success_rate") or 0.0,
            -(stats.get("avg_latency") or math.inf),
        )

    return max(comparison.items(), key=key)[0]


def _float(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | int):
        return None if isinstance(value, float) and math.isnan(value) else value
    return value
