"""The background writer: batches records into MLflow off the request's hot path.

Requests are put on a bounded queue; one thread drains it, writes traces in batches (one
`log_spans` call per batch), buffers table rows into parquet parts, and runs run-lifecycle
operations in order. Whatever the store refuses goes to the spool and is replayed later.
Nothing is dropped: a full queue makes producers wait (back-pressure), never discards.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from orchestra.tracking.records import RequestRecord
from orchestra.tracking.redact import SECRETS
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.spool import Spool
from orchestra.tracking.store import MlflowStore

logger = logging.getLogger("orchestra.tracking")

_RETRY_STORE_AFTER_S = 2.0
_REPLAY_EVERY_S = 15.0


@dataclass
class CreateRun:
    run_key: str
    name: str
    params: dict[str, Any]
    tags: dict[str, str]
    start_ms: int
    parent_run_key: str | None = None
    result: Future[str | None] = field(default_factory=Future)


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
    done: threading.Event = field(default_factory=threading.Event)


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
    """One thread that owns every write to the tracking store."""

    def __init__(
        self,
        settings: TrackingSettings,
        store_factory: Callable[[TrackingSettings], MlflowStore] = MlflowStore,
    ) -> None:
        self.settings = settings
        self.stats = WriterStats()
        self.spool = Spool(settings.spool_dir)
        self._store_factory = store_factory
        self._store: MlflowStore | None = None
        self._store_failed_at = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.max_queue)
        self._run_ids: dict[str, str] = {}
        self._pending_rows: dict[str, list[RequestRecord]] = {}
        self._pending_since: dict[str, float] = {}
        self._last_replay = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="orchestra-tracking-writer", daemon=True)
        self._thread.start()

    # ---- producer side -------------------------------------------------------------------

    def offer(self, item: Any) -> bool:
        """Queue `item` without blocking; False when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def put(self, item: Any) -> None:
        """Queue `item`, waiting while the queue is full (back-pressure)."""
        if not self.offer(item):
            self.stats.backpressure_waits += 1
            self._queue.put(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (or spooled); False on timeout."""
        barrier = Barrier()
        self.put(barrier)
        return barrier.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        if self._stopping:
            return
        self.flush(timeout)
        self._stopping = True
        self.put(None)
        self._thread.join(timeout)

    def queued(self) -> int:
        return self._queue.qsize()

    def run_id(self, run_key: str) -> str | None:
        return self._run_ids.get(run_key)

    # ---- writer thread -------------------------------------------------------------------

    def _loop(self) -> None:
        self._guarded(self._replay_spool)
        while True:
            batch = self._next_batch()
            records: list[RequestRecord] = []
            stop = False
            for item in batch:
                if isinstance(item, RequestRecord):
                    records.append(item)
                    continue
                self._guarded(self._write_records, records)
                records = []
                if item is None:
                    stop = True
                else:
                    self._guarded(self._handle, item)
            self._guarded(self._write_records, records)
            self._guarded(self._flush_due_parts)
            if self._store_failed_at and time.monotonic() - self._last_replay > _REPLAY_EVERY_S:
                self._guarded(self._replay_spool)
            if stop:
                self._guarded(self._flush_parts)
                return

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run one step; a bug in it is logged, and the thread keeps writing what it can."""
        try:
            step(*args)
        except Exception:
            self.stats.failures += 1
            logger.exception("tracking writer step %s failed", getattr(step, "__name__", step))

    def _next_batch(self) -> list[Any]:
        try:
            first = self._queue.get(timeout=self.settings.flush_interval_s)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.settings.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, item: Any) -> None:
        if isinstance(item, Barrier):
            self._flush_parts()
            item.done.set()
        elif isinstance(item, CreateRun):
            run_id = self._create_run(item)
            if item.result.set_running_or_notify_cancel():
                item.result.set_result(run_id)
        elif isinstance(item, EndRun):
            self._end_run(item)
        elif isinstance(item, LogMetrics):
            self._log_metrics(item)

    def _open_store(self) -> MlflowStore | None:
        if self._store is not None:
            return self._store
        if self._store_failed_at and time.monotonic() - self._store_failed_at < _RETRY_STORE_AFTER_S:
            return None
        try:
            store = self._store_factory(self.settings)
            _ = store.experiment_id
        except Exception as err:
            self._note_failure("opening the tracking store", err)
            return None
        self._store = store
        return store

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
        store = self._open_store()
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

    def _create_run(self, op: CreateRun) -> str | None:
        existing = self._run_ids.get(op.run_key)
        if existing:
            return existing
        store = self._open_store()
        try:
            if store is None:
                raise ConnectionError("tracking store unavailable")
            parent = self._run_ids.get(op.parent_run_key) if op.parent_run_key else None
            run_id = store.create_run(
                op.name,
                run_key=op.run_key,
                params=op.params,
                tags=op.tags,
                start_ms=op.start_ms,
                parent_run_id=parent,
            )
        except Exception as err:
            self._note_failure("creating a run", err)
            self._spool_ops([_create_run_json(op)])
            return None
        self._run_ids[op.run_key] = run_id
        return run_id

    def _end_run(self, op: EndRun) -> None:
        self._flush_parts(op.run_key)
        run_id = self._resolve_run(op.run_key)
        try:
            if run_id is None or self._store is None:
                raise ConnectionError("run not created in the store yet")
            self._store.end_run(run_id, op.metrics, op.status, op.end_ms)
        except Exception as err:
            self._note_failure("ending a run", err)
            self._spool_ops(
                [
                    {
                        "op": "end_run",
                        "run_key": op.run_key,
                        "metrics": op.metrics,
                        "status": op.status,
                        "end_ms": op.end_ms,
                    }
                ]
            )

    def _log_metrics(self, op: LogMetrics) -> None:
        run_id = self._resolve_run(op.run_key)
        try:
            if run_id is None or self._store is None:
                raise ConnectionError("run not created in the store yet")
            self._store.log_metrics(run_id, op.metrics, op.step)
        except Exception as err:
            self._note_failure("logging metrics", err)
            self._spool_ops(
                [{"op": "metrics", "run_key": op.run_key, "metrics": op.metrics, "step": op.step}]
            )

    def _write_records(self, records: list[RequestRecord]) -> None:
        if not records:
            return
        by_run: dict[str, list[RequestRecord]] = {}
        for record in records:
            by_run.setdefault(record.run_key, []).append(record)
        for run_key, group in by_run.items():
            run_id = self._resolve_run(run_key)
            if run_id is None or self._store is None:
                self._spool_records(run_key, group, ["traces", "rows"])
                continue
            try:
                self.stats.traces_written += self._store.write_traces(run_id, group)
            except Exception as err:
                self._note_failure("writing traces", err)
                self._spool_records(run_key, group, ["traces"])
            pending = self._pending_rows.setdefault(run_key, [])
            if not pending:
                self._pending_since[run_key] = time.monotonic()
            pending.extend(group)
            if len(pending) >= self.settings.rows_per_part:
                self._flush_parts(run_key)

    def _flush_due_parts(self) -> None:
        now = time.monotonic()
        for run_key, since in list(self._pending_since.items()):
            if now - since >= self.settings.part_interval_s:
                self._flush_parts(run_key)

    def _flush_parts(self, run_key: str | None = None) -> None:
        keys = [run_key] if run_key is not None else list(self._pending_rows)
        for key in keys:
            records = self._pending_rows.pop(key, [])
            self._pending_since.pop(key, None)
            if records:
                self._write_part(key, records)

    def _write_part(self, run_key: str, records: list[RequestRecord]) -> bool:
        from orchestra.tracking.records import to_row

        run_id = self._resolve_run(run_key)
        try:
            if run_id is None or self._store is None:
                raise ConnectionError("run not created in the store yet")
            rows = [to_row(record, run_id) for record in records]
            name = f"part-{records[0].start_ns:020d}-{uuid.uuid4().hex[:8]}.parquet"
            self._store.write_request_part(run_id, rows, name)
        except Exception as err:
            self._note_failure("writing the request table", err)
            self._spool_records(run_key, records, ["rows"])
            return False
        self.stats.rows_written += len(records)
        self.stats.parts_written += 1
        return True

    def _spool_records(self, run_key: str, records: list[RequestRecord], sinks: list[str]) -> None:
        self._spool_ops(
            [
                {
                    "op": "requests",
                    "run_key": run_key,
                    "sinks": sinks,
                    "records": [r.to_json() for r in records],
                }
            ]
        )

    def _spool_ops(self, operations: list[dict[str, Any]]) -> None:
        try:
            self.spool.append(operations)
        except OSError as err:  # the disk itself failed: nothing left to do but say so loudly
            logger.error("could not spool %d tracking operation(s): %s", len(operations), err)
            return
        self.stats.spooled_operations += len(operations)

    # ---- replay --------------------------------------------------------------------------

    def _replay_spool(self) -> None:
        self._last_replay = time.monotonic()
        files = self.spool.claim()
        if not files:
            return
        if self._open_store() is None:
            self._requeue(files)
            return
        failed_before = self.stats.failures
        for path in files:
            leftovers = []
            for operation in Spool.read(path):
                if not self._replay(operation):
                    leftovers.append(operation)
            if leftovers:
                self._spool_ops(leftovers)
                self.stats.spooled_operations -= len(leftovers)
            Spool.release(path)
        if self.stats.failures == failed_before:
            self._store_failed_at = 0.0

    def _requeue(self, files: list) -> None:
        for path in files:
            operations = Spool.read(path)
            self.spool.append(operations)
            Spool.release(path)

    def _replay(self, operation: dict[str, Any]) -> bool:
        kind, run_key = operation["op"], operation["run_key"]
        try:
            if kind == "create_run":
                run_id = self._resolve_run(run_key)
                if run_id is None and self._store is not None:
                    parent_key = operation.get("parent_run_key")
                    run_id = self._store.create_run(
                        operation["name"],
                        run_key=run_key,
                        params=operation["params"],
                        tags=operation["tags"],
                        start_ms=operation["start_ms"],
                        parent_run_id=self._resolve_run(parent_key) if parent_key else None,
                    )
                    self._run_ids[run_key] = run_id
                ok = run_id is not None
            else:
                run_id = self._resolve_run(run_key)
                if run_id is None or self._store is None:
                    return False
                if kind == "requests":
                    records = [RequestRecord.from_json(r) for r in operation["records"]]
                    if "traces" in operation["sinks"]:
                        self.stats.traces_written += self._store.write_traces(run_id, records)
                    if "rows" in operation["sinks"] and not self._write_part(run_key, records):
                        return True  # _write_part spooled the rows again
                elif kind == "end_run":
                    self._store.end_run(
                        run_id, operation["metrics"], operation["status"], operation["end_ms"]
                    )
                elif kind == "metrics":
                    self._store.log_metrics(run_id, operation["metrics"], operation.get("step", 0))
                ok = True
        except Exception as err:
            self._note_failure(f"replaying a spooled {kind}", err)
            return False
        if ok:
            self.stats.replayed_operations += 1
        return ok


def _create_run_json(op: CreateRun) -> dict[str, Any]:
    return {
        "op": "create_run",
        "run_key": op.run_key,
        "name": op.name,
        "params": op.params,
        "tags": op.tags,
        "start_ms": op.start_ms,
        "parent_run_key": op.parent_run_key,
    }
