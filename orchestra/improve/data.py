"""Training tables for learned routing: one row per logged call with a quality label.

    table = training_table(load_requests(run_ids=[explore_run_id]))

An exploration run (every provider asked on each prompt, e.g. `min_providers` = all of them)
gives full information: each provider's quality and cost on the same prompts.
"""

from __future__ import annotations

import polars as pl

from orchestra.analysis.requests import calls_table

COLUMNS = ["prompt", "task_type", "provider", "quality", "cost_usd", "latency_ms"]


def training_table(requests: pl.DataFrame) -> pl.DataFrame:
    """Every successful logged call with a quality label, with its request's prompt."""
    if "prompt" not in requests.columns:
        raise ValueError("the requests need their prompt column (load_requests reads it by default)")
    calls = calls_table(requests)
    return calls.filter(pl.col("ok") & pl.col("quality").is_not_null()).select(COLUMNS)
