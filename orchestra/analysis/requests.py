"""Logged requests as DataFrames: every request of chosen runs, each provider call, a user's history.

    requests = load_requests(experiment="orchestra")             # one row per request
    calls = calls_table(requests)                                 # one row per provider call
    history(user_id="alice", session_id="s1")                     # a conversation, in order

Reading goes straight to the request-table parquet parts of each run (lazily, only the columns
asked for), so a million rows load in seconds. Nothing here mutates its input.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl

from orchestra.tracking.records import ROW_SCHEMA
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.store import REQUESTS_ARTIFACT_DIR, MlflowStore

_EMPTY_SCHEMA = pl.from_arrow(ROW_SCHEMA.empty_table()).schema


def load_requests(
    experiment: str | None = None,
    run_ids: list[str] | None = None,
    since: datetime | None = None,
    *,
    tracking: TrackingSettings | str | Path | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """Every logged request of the runs (default: all runs of the experiment), with `run_name`.

    `since` keeps requests at or after that time (timezone-aware, or taken as UTC); `columns`
    reads only those (plus request_id, run_id and run_name).
    """
    settings = tracking if isinstance(tracking, TrackingSettings) else load_tracking_settings(tracking)
    if experiment is not None:
        settings = settings.model_copy(update={"experiment": experiment})
    store = MlflowStore(settings)
    runs = _runs(store, run_ids)
    wanted = None if columns is None else list(dict.fromkeys(["request_id", "run_id", "timestamp", *columns]))
    frames = []
    with tempfile.TemporaryDirectory(prefix="orchestra-load-") as scratch:
        for run_id, (name, artifact_uri) in runs.items():
            parts = _parts(store, run_id, artifact_uri, Path(scratch))
            if not parts:
                continue
            scan = pl.scan_parquet(parts)
            if wanted is not None:
                scan = scan.select(wanted)
            frames.append(scan.with_columns(pl.lit(name, dtype=pl.String).alias("run_name")))
        if not frames:
            empty = pl.DataFrame(schema=_EMPTY_SCHEMA).with_columns(
                pl.lit(None, dtype=pl.String).alias("run_name")
            )
            return empty if wanted is None else empty.select([*wanted, "run_name"])
        frame = pl.concat(frames, how="vertical_relaxed")
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            frame = frame.filter(pl.col("timestamp") >= moment)
        result = frame.unique("request_id", keep="last", maintain_order=True).sort("timestamp").collect()
    return result


def _runs(store: MlflowStore, run_ids: list[str] | None) -> dict[str, tuple[str, str]]:
    if run_ids is not None:
        runs = [store.client.get_run(run_id) for run_id in run_ids]
    else:
        runs = store.client.search_runs([store.experiment_id], max_results=50_000)
    return {run.info.run_id: (run.info.run_name or run.info.run_id, run.info.artifact_uri) for run in runs}


def _parts(store: MlflowStore, run_id: str, artifact_uri: str, scratch: Path) -> list[str]:
    """The run's parquet parts: read in place from a local artifact store, else downloaded."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        folder = Path(parsed.path if parsed.scheme == "file" else artifact_uri) / REQUESTS_ARTIFACT_DIR
        return sorted(str(p) for p in folder.glob("*.parquet"))
    try:
        local = store.client.download_artifacts(run_id, REQUESTS_ARTIFACT_DIR, str(scratch / run_id))
    except Exception:  # a run that logged no request
        return []
    return sorted(str(p) for p in Path(local).glob("*.parquet"))


def calls_table(requests: Any) -> pl.DataFrame:
    """One row per provider call (from `calls_json`): provider, model, ok, latency, tokens, cost,
    quality, error type and attempts, with the request's id, run, task type and time."""
    frame = requests if isinstance(requests, pl.DataFrame) else pl.from_pandas(requests)
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
                "extra": pl.Struct({"attempts": pl.Int64, "cache_hit": pl.Boolean}),
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
        .unnest("extra")
    )
    return calls.with_columns(pl.col("attempts").fill_null(1), pl.col("cache_hit").fill_null(False))


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
