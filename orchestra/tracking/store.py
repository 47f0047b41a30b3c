"""Every MLflow call orchestra makes, in one place (runs, params, metrics, traces, assessments,
artifacts).

store = MlflowStore(settings)
run_id = store.create_run("my-arm", run_key="k1", params={"seed": "0"}, tags={})
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.engine.records import RequestRecord
from orchestra.errors import TrackingStoreError
from orchestra.redact import SECRETS
from orchestra.tracking.locks import held
from orchestra.tracking.rows import rows_table
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.uris import mask_uris_in, masked_uri, register_uri_secret

if TYPE_CHECKING:
    import pyarrow as pa

RUN_KEY_TAG = "orchestra.run_key"
REQUESTS_ARTIFACT_DIR = "requests"
_MAX_PARAM_CHARS = 6000
_LINK_CHUNK = 100
_MAX_BATCH = 1000  # MLflow's log_batch limit on params + metrics + tags
_SQL = ("sqlite:", "postgresql", "mysql", "mssql")
_SCHEMA_ATTEMPTS = 4
_IMPORTING = threading.Lock()
"""Python's import locks can deadlock two threads importing MLflow's circular modules at once."""


class MlflowStore:
    """A tracking store: an MLflow SQL store (SQLite/PostgreSQL) or an `mlflow server`."""

    def __init__(self, settings: TrackingSettings) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        with _IMPORTING:  # a writer thread may open a store while the caller's thread opens one
            from mlflow.tracing.client import TracingClient
            from mlflow.tracking import MlflowClient

        self.settings = settings
        uri = settings.tracking_uri
        register_uri_secret(uri)
        if uri.startswith(("http://", "https://")):
            # MLflow retries HTTP calls for minutes by default; the journal is our retry (with
            # backoff), so a call that fails once more is left for the next pass.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        self._experiment_id: str | None = None
        try:
            probe(uri)
            with _schema_lock(settings):  # MLflow creates a new store's tables on first use
                self.client = MlflowClient(uri)
                self._tracing = TracingClient(uri)
                self._create_schema()
        except Exception as err:  # MLflow and drivers raise many types when a store is unreachable
            raise TrackingStoreError(f"cannot open tracking store {masked_uri(uri)}: {_masked(err)}") from err

    def _create_schema(self) -> None:
        """Let MLflow create (or migrate) a SQL store's tables now, once, retrying the race of
        two processes doing it at the same moment on a store no lock file can cover."""
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                self.client.search_experiments(max_results=1)
                return
            except Exception:
                if attempt == _SCHEMA_ATTEMPTS - 1 or not self.settings.tracking_uri.startswith(_SQL):
                    raise
                time.sleep(0.5 * (attempt + 1))

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._ensure_experiment()
        return self._experiment_id

    def _ensure_experiment(self) -> str:
        experiment = self.client.get_experiment_by_name(self.settings.experiment)
        if experiment is not None:
            return experiment.experiment_id
        location = self.settings.artifact_location
        if location and "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
        try:
            return self.client.create_experiment(self.settings.experiment, artifact_location=location)
        except Exception:  # another process created it a moment ago
            experiment = self.client.get_experiment_by_name(self.settings.experiment)
            if experiment is None:
                raise
            return experiment.experiment_id

    def create_run(
        self,
        name: str,
        *,
        run_key: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        start_ms: int | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        """A new run holding `params` (redacted, truncated to MLflow's limits) and `tags`."""
        from mlflow.entities import Param, RunTag
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        all_tags = {**tags, RUN_KEY_TAG: run_key}
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        run = self.client.create_run(
            self.experiment_id,
            start_time=start_ms,
            tags={k: SECRETS.redact(str(v)) for k, v in all_tags.items()},
            run_name=name,
        )
        run_id = run.info.run_id
        items = [Param(k, SECRETS.redact(str(v))[:_MAX_PARAM_CHARS]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100], tags=[], metrics=[])
        if not items:
            self.client.log_batch(run_id, tags=[RunTag("orchestra.params", "none")])
        return run_id

    def find_run(self, run_key: str) -> str | None:
        """The run created under `run_key`, if any (so spooled work finds its run later)."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def end_run(self, run_id: str, metrics: Mapping[str, float], status: str, end_ms: int | None) -> None:
        finite = {k: v for k, v in metrics.items() if v is not None and v == v}  # no NaN
        self.log_metrics(run_id, finite, timestamp_ms=end_ms)
        self.client.set_terminated(run_id, status=status, end_time=end_ms)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int = 0, timestamp_ms: int | None = None
    ) -> None:
        """Log `metrics`; with a fixed `timestamp_ms`, logging them again adds nothing (a replay)."""
        self.log_metric_steps(run_id, [(metrics, step, timestamp_ms)])

    def log_metric_steps(
        self, run_id: str, steps: Sequence[tuple[Mapping[str, float], int, int | None]]
    ) -> None:
        """Log several (metrics, step, timestamp_ms) at once, in as few calls as MLflow allows."""
        from mlflow.entities import Metric

        items: list[Metric] = []
        for metrics, step, timestamp_ms in steps:
            now = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
            items += [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for start in range(0, len(items), _MAX_BATCH):
            self.client.log_batch(run_id, metrics=items[start : start + _MAX_BATCH])

    def write_traces(self, run_id: str, records: Iterable[RequestRecord]) -> int:
        """Log the traces of `records` in one call and link them to the run; returns the count."""
        records = list(records)
        if not records:
            return 0
        from orchestra.tracking.spans import request_spans  # imports MLflow's tracing

        spans = [span for record in records for span in request_spans(record)]
        try:
            self._tracing.log_spans(self.experiment_id, spans)
        except NotImplementedError as err:
            # MLflow caches a failed server-version check for the life of the process; forget
            # it, so that a tracking server that comes back is written to again.
            forget_failed_server_checks()
            raise TrackingStoreError(f"the tracking server's version is unknown: {err}") from err
        trace_ids = [record.trace_id for record in records]
        for start in range(0, len(trace_ids), _LINK_CHUNK):
            self.client.link_traces_to_run(trace_ids[start : start + _LINK_CHUNK], run_id)
        self.write_feedback(records)
        return len(records)

    def traces_present(self, trace_ids: Iterable[str]) -> set[str]:
        """Which of `trace_ids` the store has a trace for (looked up 100 at a time)."""
        trace_ids = list(trace_ids)
        found: set[str] = set()
        for start in range(0, len(trace_ids), _LINK_CHUNK):
            infos = self._tracing.store.batch_get_trace_infos(trace_ids[start : start + _LINK_CHUNK])
            found.update(info.trace_id for info in infos)
        return found

    def link_traces(self, run_id: str, trace_ids: Iterable[str]) -> None:
        """Link traces to a run (ones linked already are left as they are)."""
        trace_ids = list(trace_ids)
        for start in range(0, len(trace_ids), _LINK_CHUNK):
            self.client.link_traces_to_run(trace_ids[start : start + _LINK_CHUNK], run_id)

    def write_feedback(self, records: Iterable[RequestRecord]) -> int:
        """Log each record's quality signals as assessments on its (written) trace; one that is
        there already (the same id: a retried batch) is kept as it is. Returns how many are new."""
        from orchestra.tracking.assessment_writer import write_assessments
        from orchestra.tracking.assessments import request_feedback

        feedback = [item for record in records for item in request_feedback(record)]
        return write_assessments(self._tracing.store, feedback)

    def write_request_part(self, run_id: str, rows: list[dict[str, Any]] | pa.Table, part_name: str) -> None:
        """One parquet part of the run's request table, under artifacts `requests/` (a part of
        the same name is replaced)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = rows if isinstance(rows, pa.Table) else rows_table(rows)
        with tempfile.TemporaryDirectory(prefix="orchestra-part-") as folder:
            path = Path(folder) / part_name
            pq.write_table(table, path, compression="zstd")
            self.client.log_artifact(run_id, str(path), REQUESTS_ARTIFACT_DIR)

    def log_artifact_file(self, run_id: str, path: str | Path, artifact_dir: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_dir)

    def runs(self, filter_string: str = "") -> list[dict[str, Any]]:
        """Runs of the experiment matching an MLflow filter, as plain dicts (newest first)."""
        found = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10_000)
        return [
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "tags": dict(run.data.tags),
                "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
            }
            for run in found
        ]

    def terminate(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, SECRETS.redact(str(value)))


def forget_failed_server_checks() -> None:
    """Clear MLflow's cache of tracking-server versions (it keeps a failed check forever)."""
    with _IMPORTING:
        from mlflow.store.tracking.rest_store import RestStore

    RestStore._get_server_version.cache_clear()


_SCHEMA_LOCK_KEY = 0x6F72636865737472  # "orchestr": PostgreSQL's advisory lock for the schema


@contextlib.contextmanager
def _schema_lock(settings: TrackingSettings) -> Iterator[None]:
    """While MLflow creates a new store's tables, one process at a time: a lock file beside a
    SQLite store, an advisory lock in a PostgreSQL one (MLflow's migrations take seconds there,
    and two processes running them at once fail on duplicate tables)."""
    if settings.tracking_uri.startswith("postgresql"):
        with _advisory_lock(settings.tracking_uri):
            yield
        return
    database = settings.sqlite_path
    if database is None or str(database) == ":memory:" or not os.access(database.parent, os.W_OK):
        yield  # a read-only store's tables exist already (nothing can create them)
        return
    with held(database.with_name(database.name + ".lock")):
        yield


@contextlib.contextmanager
def _advisory_lock(uri: str) -> Iterator[None]:
    """PostgreSQL's session advisory lock `_SCHEMA_LOCK_KEY`, held on a connection of its own."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({_SCHEMA_LOCK_KEY})")
            try:
                yield
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK_KEY})")
    finally:
        engine.dispose()


def _masked(err: BaseException) -> str:
    return SECRETS.redact(mask_uris_in(str(err)))


def probe(uri: str, timeout_s: float = 3.0) -> None:
    """Fail fast when the store is unreachable (MLflow itself retries for about 100 s)."""
    if uri.startswith(("http://", "https://")):
        import urllib.request

        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    if "://" not in uri or uri.startswith("file:"):
        return
    import sqlalchemy

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"connect_timeout": int(timeout_s)} if uri.startswith(("postgresql", "mysql")) else {}
    engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
