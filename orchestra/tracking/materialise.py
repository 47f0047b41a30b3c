"""A run's deferred traces, written from its request table: `orchestra traces RUN_ID`.

    result = materialise_traces("5f3c...")        # mlflow.yaml in the working folder
    print(result)    # run 5f3c...: 2000 requests; 412 had a trace, 1588 written now, 0 without one

With `traces: budget` (the default) the writer leaves some requests without a trace while it logs
them (see trace_budget.py); their rows hold everything a trace shows (`rows.record_from_row`).
This reads the run's request table, asks the store which of its requests have a trace (traces
are keyed by request id), writes the others through the same `MlflowStore.write_traces` the
trace writer uses (MLflow's `log_spans`, `link_traces_to_run`, assessments), and sets the run's
`traces_written` and `traces_deferred` metrics from what the store then holds. Running it again
writes nothing new. With `workers=2` two processes share the writing (each its own store
connection).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from orchestra.engine.records import RequestRecord
from orchestra.errors import InvalidRequest, TrackingStoreError
from orchestra.logs import get_logger
from orchestra.tracking.isolate import describe, isolate
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.trace_counts import TRACES_DEFERRED, TRACES_WRITTEN
from orchestra.tracking.uris import masked_uri

logger = get_logger("orchestra.tracking")


@dataclass(frozen=True)
class MaterialiseResult:
    """What `materialise_traces` found and did for one run."""

    run_id: str
    store: str
    """The tracking store, masked (no password)."""
    requests: int
    already: int
    """Requests whose trace was in the store before."""
    written: int
    """Traces written now."""
    refused: int
    """Requests whose trace the store refused (each logged with the reason)."""
    seconds: float

    @property
    def deferred(self) -> int:
        """Requests still without a trace (refused ones)."""
        return self.requests - self.already - self.written

    @property
    def traces_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"run {self.run_id} in {self.store}: {self.requests} requests; {self.already} had a trace, "
            f"{self.written} written now ({self.traces_per_s:.0f}/s), {self.deferred} without one"
        )


def materialise_traces(
    run_id: str,
    tracking: TrackingSettings | str | Path | None = None,
    *,
    batch_size: int = 250,
    workers: int = 1,
    progress: bool = False,
) -> MaterialiseResult:
    """Write the traces of `run_id`'s requests that the store does not have; see the module
    docstring. `tracking`: settings or a mlflow.yaml path (default: ./mlflow.yaml)."""
    from orchestra.tracking.reader import read_request_table
    from orchestra.tracking.rows import record_from_row

    settings = tracking if isinstance(tracking, TrackingSettings) else load_tracking_settings(tracking)
    started = time.perf_counter()
    store = MlflowStore(settings)
    _check_run(store, run_id)
    table = read_request_table(settings, run_id)
    records = [record_from_row(row) for row in table.iter_rows(named=True)]
    present = store.traces_present(record.trace_id for record in records)
    store.link_traces(run_id, sorted(present))  # linked already, unless a crash came in between
    missing = [record for record in records if record.trace_id not in present]
    written, refused = _write(settings, store, run_id, missing, batch_size, workers, progress)
    store.log_metrics(
        run_id, {TRACES_WRITTEN: len(present) + written, TRACES_DEFERRED: len(missing) - written}
    )
    return MaterialiseResult(
        run_id=run_id,
        store=masked_uri(settings.tracking_uri),
        requests=len(records),
        already=len(present),
        written=written,
        refused=refused,
        seconds=time.perf_counter() - started,
    )


def _check_run(store: MlflowStore, run_id: str) -> None:
    """An unknown run is the caller's mistake (said plainly), not an empty request table."""
    from mlflow.exceptions import MlflowException

    try:
        store.client.get_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise InvalidRequest(
            f"there is no run {run_id!r} in the tracking store {masked_uri(store.settings.tracking_uri)}"
        ) from None


def _write(
    settings: TrackingSettings,
    store: MlflowStore,
    run_id: str,
    records: list[RequestRecord],
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[int, int]:
    """Write `records`' traces in batches (in `workers` processes when more than one); returns
    (written, refused)."""
    from tqdm.auto import tqdm

    batches = [records[start : start + batch_size] for start in range(0, len(records), batch_size)]
    written = refused = 0
    with tqdm(total=len(records), desc="traces", unit="trace", disable=not progress) as bar:
        if workers <= 1 or len(batches) <= 1:
            outcomes: Iterator[tuple[int, int]] = (_write_batch(store, run_id, batch) for batch in batches)
            for done, failed in outcomes:
                written, refused = written + done, refused + failed
                bar.update(done + failed)
            return written, refused
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_open_worker_store,
            initargs=(settings.model_dump_json(),),
        ) as pool:
            for done, failed in pool.map(_write_in_worker, [run_id] * len(batches), batches):
                written, refused = written + done, refused + failed
                bar.update(done + failed)
    return written, refused


def _write_batch(store: MlflowStore, run_id: str, batch: list[RequestRecord]) -> tuple[int, int]:
    """One batch through the trace writer's path; a refused record is isolated and logged, an
    outage raises (what is written stays written: running again goes on from there)."""

    def write(chunk: list[RequestRecord]) -> None:
        store.write_traces(run_id, chunk)

    outcome = isolate(batch, write)
    for record, err in outcome.refused:
        logger.error("the store refused the trace of request %s: %s", record.request_id, describe(err))
    if outcome.outage is not None:
        raise TrackingStoreError(f"writing traces: {describe(outcome.outage)}") from outcome.outage
    return len(outcome.written), len(outcome.refused)


_WORKER_STORE: list[MlflowStore] = []


def _open_worker_store(settings_json: str) -> None:
    """A worker process's store (settings come through the pool's pipe, never a command line)."""
    from orchestra.redact import SECRETS
    from orchestra.tracking.uris import register_uri_secret

    settings = TrackingSettings.model_validate_json(settings_json)
    register_uri_secret(settings.tracking_uri)
    SECRETS.register_environment()
    _WORKER_STORE.append(MlflowStore(settings))


def _write_in_worker(run_id: str, batch: list[RequestRecord]) -> tuple[int, int]:
    return _write_batch(_WORKER_STORE[0], run_id, batch)
