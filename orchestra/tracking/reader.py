"""Reading back what was logged: a run's request table, as one DataFrame.

frame = read_request_table(settings, run_id)   # one row per request, deduplicated
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import polars as pl

from orchestra.tracking.records import ROW_SCHEMA
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import REQUESTS_ARTIFACT_DIR, MlflowStore


def read_request_table(settings: TrackingSettings, run_id: str) -> pl.DataFrame:
    """Every request row of `run_id` (parts concatenated; a replayed duplicate kept once)."""
    store = MlflowStore(settings)
    with tempfile.TemporaryDirectory(prefix="orchestra-read-") as folder:
        try:
            local = store.client.download_artifacts(run_id, REQUESTS_ARTIFACT_DIR, folder)
        except Exception:  # no part was written for this run
            return pl.DataFrame(schema=pl.from_arrow(ROW_SCHEMA.empty_table()).schema)
        parts = sorted(Path(local).glob("*.parquet"))
        if not parts:
            return pl.DataFrame(schema=pl.from_arrow(ROW_SCHEMA.empty_table()).schema)
        frame = pl.concat([pl.read_parquet(part) for part in parts], how="vertical_relaxed")
    return frame.unique("request_id", keep="last", maintain_order=True).sort("timestamp")


def load_request_tables(
    settings: TrackingSettings,
    *,
    experiment: str | None = None,
    run_ids: list[str] | None = None,
    since: datetime | None = None,
) -> pl.DataFrame:
    """Every logged request of the chosen runs (default: every run of the experiment)."""
    store = MlflowStore(
        settings if experiment is None else settings.model_copy(update={"experiment": experiment})
    )
    if run_ids is None:
        runs = store.client.search_runs([store.experiment_id], max_results=50_000)
        run_ids = [
            run.info.run_id
            for run in runs
            if since is None or run.info.end_time is None or run.info.end_time >= since.timestamp() * 1000
        ]
    frames = [read_request_table(settings, run_id) for run_id in run_ids]
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return pl.DataFrame(schema=pl.from_arrow(ROW_SCHEMA.empty_table()).schema)
    frame = pl.concat(frames, how="vertical_relaxed")
    if since is not None:
        frame = frame.filter(pl.col("timestamp") >= since)
    return frame
