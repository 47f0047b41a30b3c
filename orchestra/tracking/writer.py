"""The background writer: gets every record into MLflow off the request's hot path.

Two threads share the work so that the fast sink never waits for the slow one:

- the control thread takes the intake queue in order: run lifecycle (create, metrics, end),
  and request rows, which it buffers into parquet parts of the run's request table;
- the trace thread receives each record from the control thread and writes traces in batches
  (one `log_spans` call per batch, then links them to the run), by default through a child
  process (`trace_writer: process`) so that this CPU-heavy work does not slow requests down.

Whatever the store refuses goes to the spool and is replayed later. Nothing is dropped: when
the queues are full, producers wait (back-pressure).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.tracking.records import RequestRecord, to_row
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.spool import Spool
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.trace_sink import StoreOpener, TraceResult, TraceSink

logger = get_logger("orchestra.tracking")

_REPLAY_EVERY_S = 15.0
_STOP = object()


@dataclass
class CreateRun:
    run_key: str
    name: str
    params: dict[str, Any]
    tags: dict[str, str]
    start_ms: int
    parent_run_key: str | None = None
    result: Future[str | None] = field(default_factory=Future)

    def as_json(self) -> dict[str, Any]:
        return {
            "op": "create_run",
            "run_key": self.run_key,
            "name": self.name,
            "params": self.params,
            "tags": self.tags,
            "start_ms": self.start_ms,
            "parent_run_key": self.parent_run_key,
        }


@dataclass
class EndRun:
    run_key: str
    metrics: dict[str, float]
    status: str
    end_ms: int


@dataclass
class LogMetrics:
    run_key: str
    metrics: dict[str, float]
    step: int = 0


@dataclass
class Barrier:
    """Set once everything queued before it is written (or spooled) by both threads."""

    rows_done: threading.Event = field(default_factory=threading.Event)
    traces_done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.rows_done.wait(timeout):
            return False
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        return self.traces_done.wait(remaining)


@dataclass
class WriterStats:
    """Counters the writer keeps; read them with `Tracker.stats()`."""

    traces_written: int = 0
    rows_written: int = 0
    parts_written: int = 0
    spooled_operations: int = 0
    replayed_operations: int = 0
    failures: int = 0
    last_error: str | None = None
    backpressure_waits: int = 0


class TrackingWriter:
    """Owns every write to the tracking store; see the module docstring."""

    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self.stats = WriterStats()
        self.spool = Spool(settings.spool_dir)
        self._opener = StoreOpener(settings, self._note_failure)
        self._store_failed_at = 0.0
        self._intake: queue.Queue[Any] = queue.Queue(maxsize=settings.max_queue)
        self._traces: queue.Queue[Any] = queue.Queue(maxsize=settings.max_queue)
        self._run_ids: dict[str, str] = {}
        self._pending_rows: dict[str, list[RequestRecord]] = {}
        self._pending_since: dict[str, float] = {}
        self._last_replay = 0.0
        self._closed = False
        self._trace_backend: TraceSink | Any = self._start_trace_backend()
        self._control = threading.Thread(target=self._control_loop, name="orchestra-tracking", daemon=True)
        self._tracer = threading.Thread(target=self._trace_loop, name="orchestra-traces", daemon=True)
        self._control.start()
        self._tracer.start()

    # ---- producer side -------------------------------------------------------------------

    def offer(self, item: Any) -> bool:
        """Queue `item` without blocking; False when the queue is full."""
        try:
            self._intake.put_nowait(item)
        except queue.Full:
            return False
        return True

    def put(self, item: Any) -> None:
        """Queue `item`, waiting while the queue is full (back-pressure)."""
        if not self.offer(item):
            self.stats.backpressure_waits += 1
            self._intake.put(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (or spooled); False on timeout."""
        barrier = Barrier()
        self.put(barrier)
        return barrier.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self.put(_STOP)
        self._control.join(timeout)
        self._tracer.join(timeout)

    def queued(self) -> int:
        return self._intake.qsize() + self._traces.qsize()

    def run_id(self, run_key: str) -> str | None:
        return self._run_ids.get(run_key)

    # ---- shared helpers ------------------------------------------------------------------

    def _store(self) -> MlflowStore | None:
        """The control thread's store; None while the store is down."""
        return self._opener.get()

    def _start_trace_backend(self) -> Any:
        if self.settings.trace_writer == "process" and os.name == "posix":
            from orchestra.tracking.trace_process import TraceProcess

            return TraceProcess(self.settings, self.spool, self._count_traces)
        return TraceSink(self.settings, self.spool)

    def _count_traces(self, result: TraceResult) -> None:
        self.stats.traces_written += result.written
        self.stats.spooled_operations += result.spooled
        if result.error:
            self.stats.failures += 1
            self.stats.last_error = result.error
            if not self._store_failed_at:
                logger.warning("writing traces failed; spooling to %s (%s)", self.spool.folder, result.error)
            self._store_failed_at = time.monotonic()

    def _note_failure(self, what: str, err: Exception) -> None:
        self.stats.failures += 1
        self.stats.last_error = SECRETS.redact(f"{what}: {type(err).__name__}: {err}")
        if not self._store_failed_at:
            logger.warning(
                "tracking store failed while %s; spooling to %s (%s)",
                what,
                self.spool.folder,
                self.stats.last_error,
            )
        self._store_failed_at = time.monotonic()

    def _resolve_run(self, run_key: str) -> str | None:
        if run_key in self._run_ids:
            return self._run_ids[run_key]
        store = self._store()
        if store is None:
            return None
        try:
            run_id = store.find_run(run_key)
        except Exception as err:
            self._note_failure("looking up a run", err)
            return None
        if run_id:
            self._run_ids[run_key] = run_id
        return run_id

    def _spool_records(self, run_key: str, records: list[RequestRecord], sinks: list[str]) -> None:
        if self.spool.append_requests(run_key, records, sinks):
            self.stats.spooled_operations += 1

    def _spool_ops(self, operations: list[dict[str, Any]]) -> None:
        if self.spool.try_append(operations):
            self.stats.spooled_operations += len(operations)

    def _guarded(self, step: Callable[..., Any], *args: Any) -> None:
        """Run one step; a bug in it is logged, and the thread keeps writing what it can."""
        try:
            step(*args)
        except Exception:
            self.stats.failures += 1
            logger.exception("tracking writer step %s failed", getattr(step, "__name__", step))

    # ---- control thread: runs and request rows -------------------------------------------

    def _control_loop(self) -> None:
        self._guarded(self._replay_spool)
        while True:
            batch = _drain(self._intake, self.settings.flush_interval_s, self.settings.batch_size)
            for item in batch:
                if item is _STOP:
                    self._guarded(self._flush_parts)
                    self._traces.put(_STOP)
                    return
                self._guarded(self._handle, item)
            self._guarded(self._flush_due_parts)
            if self._store_failed_at and time.monotonic() - self._last_replay > _REPLAY_EVERY_S:
                self._guarded(self._replay_spool)

    def _handle(self, item: Any) -> None:
        if isinstance(item, RequestRecord):
            self._buffer_row(item)
            self._traces.put(item)
        elif isinstance(item, Barrier):
            self._flush_parts()
            item.rows_done.set()
            self._traces.put(item)
        elif isinstance(item, CreateRun):
            run_id = self._create_run(item)
            if item.result.set_running_or_notify_cancel():
                item.result.set_result(run_id)
        elif isinstance(item, EndRun):
            self._end_run(item)
        elif isinstance(item, LogMetrics):
            self._log_metrics(item)

    def _create_run(self, op: CreateRun) -> str | None:
        """The new run's id; None (and the creation spooled) while the store is down."""
        self._store_or_spool(op.as_json(), "creating a run")
        return self._run_ids.get(op.run_key)

    def _end_run(self, op: EndRun) -> None:
        self._flush_parts(op.run_key)
        operation = {"op": "end_run", "run_key": op.run_key, "metrics": op.metrics, "status": op.status}
        self._store_or_spool(operation | {"end_ms": op.end_ms}, "ending a run")

    def _log_metrics(self, op: LogMetrics) -> None:
        operation = {"op": "metrics", "run_key": op.run_key, "metrics": op.metrics, "step": op.step}
        self._store_or_spool(operation, "logging metrics")

    def _store_or_spool(self, operation: dict[str, Any], what: str) -> None:
        try:
            if not self._apply(operation):
                raise ConnectionError("run not created in the store yet")
        except Exception as err:
            self._note_failure(what, err)
            self._spool_ops([operation])

    def _buffer_row(self, record: RequestRecord) -> None:
        pending = self._pending_rows.setdefault(record.run_key, [])
        if not pending:
            self._pending_since[record.run_key] = time.monotonic()
        pending.append(record)
        if len(pending) >= self.settings.rows_per_part:
            self._flush_parts(record.run_key)

    def _flush_due_parts(self) -> None:
        now = time.monotonic()
        for run_key, since in list(self._pending_since.items()):
            if now - since >= self.settings.part_interval_s:
                self._flush_parts(run_key)

    def _flush_parts(self, run_key: str | None = None) -> None:
        for key in [run_key] if run_key is not None else list(self._pending_rows):
            records = self._pending_rows.pop(key, [])
            self._pending_since.pop(key, None)
            if records:
                self._write_part(key, records)

    def _write_part(self, run_key: str, records: list[RequestRecord]) -> None:
        run_id = self._resolve_run(run_key)
        store = self._store()
        try:
            if run_id is None or store is None:
                raise ConnectionError("run not created in the store yet")
            rows = [to_row(record, run_id) for record in records]
            name = f"part-{records[0].start_ns:020d}-{uuid.uuid4().hex[:8]}.parquet"
            store.write_request_part(run_id, rows, name)
        except Exception as err:
            self._note_failure("writing the request table", err)
            self._spool_records(run_key, records, ["rows"])
            return
        self.stats.rows_written += len(records)
        self.stats.parts_written += 1

    # ---- trace thread --------------------------------------------------------------------

    def _trace_loop(self) -> None:
        backend = self._trace_backend
        while True:
            batch = _drain(self._traces, self.settings.flush_interval_s, self.settings.batch_size)
            pairs: list[tuple[str, RequestRecord]] = []
            unresolved: dict[str, list[RequestRecord]] = {}  # by run key: spooled one file per run
            for item in batch:
                if isinstance(item, RequestRecord):
                    run_id = self._resolve_run(item.run_key)
                    if run_id is None:
                        unresolved.setdefault(item.run_key, []).append(item)
                    else:
                        pairs.append((run_id, item))
                    continue
                # a barrier or stop: everything before it is written or spooled first
                self._guarded(self._spool_unresolved, unresolved)
                self._guarded(self._send_traces, pairs)
                pairs, unresolved = [], {}
                if item is _STOP:
                    self._guarded(backend.close)
                    return
                if isinstance(item, Barrier):
                    self._guarded(backend.barrier)
                    item.traces_done.set()
            self._guarded(self._spool_unresolved, unresolved)
            self._guarded(self._send_traces, pairs)

    def _spool_unresolved(self, unresolved: dict[str, list[RequestRecord]]) -> None:
        """Spool the traces of records whose run the store does not have (yet)."""
        for run_key, records in unresolved.items():
            self._spool_records(run_key, records, ["traces"])

    def _send_traces(self, pairs: list[tuple[str, RequestRecord]]) -> None:
        if pairs:
            self._count_traces(self._trace_backend.write(pairs))

    # ---- replay (control thread) ---------------------------------------------------------

    def _replay_spool(self) -> None:
        self._last_replay = time.monotonic()
        files = self.spool.claim()
        if not files:
            return
        failures_before = self.stats.failures
        for path in files:
            leftovers = [operation for operation in Spool.read(path) if not self._replay(operation)]
            if leftovers:
                self._spool_ops(leftovers)
                self.stats.spooled_operations -= len(leftovers)  # moved, not new
            Spool.release(path)
        if self.stats.failures == failures_before:
            self._store_failed_at = 0.0

    def _replay(self, operation: dict[str, Any]) -> bool:
        try:
            done = self._apply(operation)
        except Exception as err:
            self._note_failure(f"replaying a spooled {operation.get('op')}", err)
            return False
        if done:
            self.stats.replayed_operations += 1
        return done

    def _apply(self, operation: dict[str, Any]) -> bool:
        """Write one spool-format operation; False when its run or the store is unavailable."""
        kind, run_key = operation["op"], operation["run_key"]
        store = self._store()
        if store is None:
            return False
        run_id = self._resolve_run(run_key)
        if kind == "create_run":
            if run_id is None:
                parent_key = operation.get("parent_run_key")
                self._run_ids[run_key] = store.create_run(
                    operation["name"],
                    run_key=run_key,
                    params=operation["params"],
                    tags=operation["tags"],
                    start_ms=operation["start_ms"],
                    parent_run_id=self._resolve_run(parent_key) if parent_key else None,
                )
            return True
        if run_id is None:
            return False
        if kind == "requests":
            records = [RequestRecord.from_json(r) for r in operation["records"]]
            if "traces" in operation["sinks"]:
                self.stats.traces_written += store.write_traces(run_id, records)
            if "rows" in operation["sinks"]:
                self._write_part(run_key, records)  # spools the rows again if it fails
        elif kind == "end_run":
            store.end_run(run_id, operation["metrics"], operation["status"], operation["end_ms"])
        elif kind == "metrics":
            store.log_metrics(run_id, operation["metrics"], operation.get("step", 0))
        return True


def _drain(source: queue.Queue[Any], wait_s: float, limit: int) -> list[Any]:
    """Up to `limit` items: wait up to `wait_s` for the first, then take what is there."""
    try:
        first = source.get(timeout=wait_s)
    except queue.Empty:
        return []
    batch = [first]
    while len(batch) < limit:
        try:
            batch.append(source.get_nowait())
        except queue.Empty:
            break
    return batch
