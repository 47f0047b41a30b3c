"""Logged requests as DataFrames: every request of chosen runs, each provider call, a user's history.

    requests = load_requests(experiment="orchestra")             # one row per request
    calls = calls_table(requests)                                 # one row per provider call
    history(user_id="alice", session_id="s1")                     # a conversation, in order

Reading goes straight to the request-table parquet parts of each run (lazily, only the columns
asked for), so a million rows load in seconds. Nothing here mutates its input.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from orchestra.frames import as_frame
from orchestra.tracking.reader import load_requests

__all__ = ["calls_table", "history", "load_requests"]


def calls_table(requests: Any) -> pl.DataFrame:
    """One row per provider call (from `calls_json`): provider, model, ok, latency, tokens, cost,
    quality, error type and attempts, with the request's id, run, task type and time."""
    frame = as_frame(requests)
    call_type = pl.List(
        pl.Struct(
            {
                "provider": pl.String,
                "model": pl.String,
                "ok": pl.Boolean,
                "latency_ms": pl.Float64,
                "input_tokens": pl.Int64,
                "output_tokens": pl.Int64,
                "cost_usd": pl.Float64,
                "quality": pl.Float64,
                "error_type": pl.String,
                "wave": pl.Int64,
                "attempts": pl.Int64,
                "cache_hit": pl.Boolean,
                "extra": pl.Struct({"attempts": pl.Int64, "cache_hit": pl.Boolean}),  # row_version 1
            }
        )
    )
    keep = [
        c
        for c in ("request_id", "run_name", "run_id", "task_type", "complexity", "timestamp", "prompt")
        if c in frame.columns
    ]
    calls = (
        frame.select([*keep, pl.col("calls_json").str.json_decode(call_type).alias("call")])
        .explode("call")
        .drop_nulls("call")
        .unnest("call")
    )
    return calls.with_columns(
        pl.coalesce("attempts", pl.col("extra").struct.field("attempts"), 1).alias("attempts"),
        pl.coalesce("cache_hit", pl.col("extra").struct.field("cache_hit"), False).alias("cache_hit"),
    ).drop("extra")


def history(
    user_id: str | None = None,
    session_id: str | None = None,
    *,
    requests: pl.DataFrame | None = None,
    **load: Any,
) -> pl.DataFrame:
    """A user's (or session's) conversation: time, session, prompt, answer, providers, status."""
    if user_id is None and session_id is None:
        raise ValueError("history needs a user_id or a session_id")
    frame = requests if requests is not None else load_requests(**load)
    if user_id is not None:
        frame = frame.filter(pl.col("user_id") == user_id)
    if session_id is not None:
        frame = frame.filter(pl.col("session_id") == session_id)
    return frame.select(
        "timestamp",
        "session_id",
        "user_id",
        "prompt",
        "response",
        "answered_by",
        "providers_used",
        "status",
        "cost_usd",
        "latency_ms",
        "run_name",
        "request_id",
    ).sort("timestamp")
