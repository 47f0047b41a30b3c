"""Reading back what was logged: a run's request table, as one DataFrame.

frame = read_request_table(settings, run_id)   # one row per request, deduplicated
"""

from __future__ import annotations

import tempfile
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
