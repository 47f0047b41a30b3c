"""Reading back what was logged: the request tables of runs, as one DataFrame.

    requests = load_requests(experiment="orchestra")            # every run of the experiment
    frame = read_request_table(settings, run_id)                 # one run, without run_name

Reading goes straight to the runs' parquet parts (in place on a local artifact store, else
downloaded), lazily and only the columns asked for; a request written twice (a part replayed
under another name by an older version, or a sweep's request run again: its id is the same) is
kept once: its last row, from the newest run.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from orchestra.tracking.rows import row_schema
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.store import REQUESTS_ARTIFACT_DIR, MlflowStore

if TYPE_CHECKING:
    import polars as pl


@cache
def _empty_schema() -> pl.Schema:
    """The request table's polars schema; built on first use (converting the arrow table
    imports pandas, which `import orchestra` should not pay for)."""
    import polars as pl

    return pl.DataFrame(row_schema().empty_table()).schema


def read_request_table(settings: TrackingSettings, run_id: str) -> pl.DataFrame:
    """Every request row of `run_id`, in time order."""
    return load_requests(run_ids=[run_id], tracking=settings).drop("run_name")


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
    import polars as pl

    settings = tracking if isinstance(tracking, TrackingSettings) else load_tracking_settings(tracking)
    if experiment is not None:
        settings = settings.model_copy(update={"experiment": experiment})
    store = MlflowStore(settings)
    runs = _runs(store, run_ids, since)
    wanted = None if columns is None else list(dict.fromkeys(["request_id", "run_id", "timestamp", *columns]))
    frames = []
    with tempfile.TemporaryDirectory(prefix="orchestra-load-") as scratch:
        for run_id, (name, artifact_uri) in runs.items():
            parts = _parts(store, run_id, artifact_uri, Path(scratch))
            if not parts:
                continue
            # parts of older versions lack the columns added since (their values are null)
            scan = pl.scan_parquet(
                parts, schema=_empty_schema(), missing_columns="insert", extra_columns="ignore"
            )
            if wanted is not None:
                scan = scan.select(wanted)
            frames.append(scan.with_columns(pl.lit(name, dtype=pl.String).alias("run_name")))
        if not frames:
            empty = pl.DataFrame(schema=_empty_schema()).with_columns(
                pl.lit(None, dtype=pl.String).alias("run_name")
            )
            return empty if wanted is None else empty.select([*wanted, "run_name"])
        frame = pl.concat(frames, how="vertical_relaxed")
        if since is not None:
            frame = frame.filter(pl.col("timestamp") >= _utc(since))
        result = frame.unique("request_id", keep="last", maintain_order=True).sort("timestamp").collect()
    return result


def _runs(
    store: MlflowStore, run_ids: list[str] | None, since: datetime | None
) -> dict[str, tuple[str, str]]:
    """Run id -> (name, artifact URI), oldest run first; with `since`, runs that ended before it
    are skipped."""
    if run_ids is not None:
        runs = [store.client.get_run(run_id) for run_id in run_ids]
    else:
        runs = store.client.search_runs([store.experiment_id], max_results=50_000)
    after_ms = None if since is None else _utc(since).timestamp() * 1000
    runs = sorted(runs, key=lambda run: run.info.start_time or 0)  # a request's newest row is kept
    return {
        run.info.run_id: (run.info.run_name or run.info.run_id, run.info.artifact_uri)
        for run in runs
        if after_ms is None or run.info.end_time is None or run.info.end_time >= after_ms
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
