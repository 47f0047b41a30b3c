"""The tracker: runs (one per configuration) and every request, written off the hot path.

tracker = Tracker(load_tracking_settings())   # no I/O yet: the journal opens on first use
run = tracker.start_run("always-gpt4", params={"routing": "rules"})
await tracker.submit(record, run)     # into the journal; the writer threads log it to MLflow
tracker.end_run(run)                   # aggregates become run metrics
tracker.flush()                        # a FlushResult: truthy once everything is in the store
"""

from __future__ import annotations

import asyncio
import atexit
import math
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestra.engine.records import RequestRecord
from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.tracking.outcome import FlushResult, TrackingStatus, WriterStats
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.uris import register_uri_secret
from orchestra.tracking.writer import TrackingWriter

logger = get_logger("orchestra.tracking")

_RUN_CREATE_TIMEOUT_S = 60.0


@dataclass
class RunStats:
    """Running aggregates of a run's requests, turned into MLflow metrics at its end."""

    requests: int = 0
    errors: int = 0
    consensus: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: list[float] = field(default_factory=list)
    processing_ms: list[float] = field(default_factory=list)
    quality_sum: float = 0.0
    quality_n: int = 0

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        self.processing_ms.append(record.processing_time_ms)
        if record.status != "ok":
            self.errors += 1
        self.cost_usd += record.cost_usd
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        if record.status == "ok":
            self.latency_ms.append(record.latency_ms)
        if record.consensus is not None:
            self.consensus += 1
        if record.quality is not None:
            self.quality_sum += record.quality
            self.quality_n += 1

    def metrics(self) -> dict[str, float]:
        n = self.requests
        metrics = {
            "requests": float(n),
            "errors": float(self.errors),
            "success_rate": (n - self.errors) / n if n else math.nan,
            "consensus_rate": self.consensus / n if n else math.nan,
            "cost_usd_total": self.cost_usd,
            "cost_usd_mean": self.cost_usd / n if n else math.nan,
            "tokens_input_total": float(self.input_tokens),
            "tokens_output_total": float(self.output_tokens),
            "latency_ms_mean": _mean(self.latency_ms),
            "processing_time_ms_p50": _quantile(self.processing_ms, 0.5),
            "processing_time_ms_p95": _quantile(self.processing_ms, 0.95),
        }
        if self.quality_n:
            metrics["quality_mean"] = self.quality_sum / self.quality_n
            metrics["quality_n"] = float(self.quality_n)
        return {k: v for k, v in metrics.items() if not math.isnan(v)}


@dataclass
class RunHandle:
    """A run as the caller sees it: its local key always, its MLflow id once the store has it."""

    run_key: str
    name: str
    run_id: str | None
    stats: RunStats = field(default_factory=RunStats)
    ended: bool = False
    created: Future[str | None] | None = field(default=None, repr=False)


class Tracker:
    """Runs and request records -> the journal -> MLflow, through one `TrackingWriter`.

    Making a tracker does no I/O: its journal and writer threads (and with them the store, e.g.
    `./mlruns`) are opened by `start()`, or by the first run or record it is given (or a flush).
    """

    def __init__(self, settings: TrackingSettings, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` paces the writers (the trace budget's per-second allowance, part intervals)."""
        self.settings = settings
        self._clock = clock
        SECRETS.register_environment()
        register_uri_secret(settings.tracking_uri)
        self._writer: TrackingWriter | None = None
        self._opening = threading.Lock()
        self._warned_backpressure = False
        self._closed = False
        reference = weakref.ref(self)
        atexit.register(lambda: (tracker := reference()) is not None and tracker.close())

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def started(self) -> bool:
        """Whether the journal and writers are open."""
        return self._writer is not None

    def start(self) -> None:
        """Open the journal and start the writers now (records of earlier processes' journals
        are adopted then); does nothing when tracking is off, or when they are open already."""
        self._open()

    def _open(self) -> TrackingWriter | None:
        if self._writer is None and self.settings.enabled and not self._closed:
            with self._opening:
                if self._writer is None:
                    self._writer = TrackingWriter(self.settings, self._clock)
        return self._writer

    def begin_run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunHandle:
        """Journal a run's creation and return at once; `wait_created` gives its MLflow id."""
        run_key = uuid.uuid4().hex
        data = {
            "name": name,
            "params": {k: str(v) for k, v in (params or {}).items()},
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "start_ms": int(time.time() * 1000),
            "parent_run_key": parent.run_key if parent else None,
        }
        writer = self._open()
        if writer is None:
            created: Future[str | None] = Future()
            created.set_result(None)
        else:
            created = writer.create_run(run_key, data)
        return RunHandle(run_key, name, None, created=created)

    def attach_run(self, run_id: str, run_key: str, name: str) -> RunHandle:
        """A handle on a run that already exists (e.g. a sweep's parent, when resuming)."""
        writer = self._open()
        if writer is not None:
            writer.attach_run(run_key, run_id)
        return RunHandle(run_key, name, run_id)

    def start_run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunHandle:
        """Create a run and wait for its id (None while the store is down: it is journaled)."""
        handle = self.begin_run(name, params, tags, parent)
        assert handle.created is not None
        handle.run_id = handle.created.result(_RUN_CREATE_TIMEOUT_S)
        return handle

    async def astart_run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunHandle:
        """`start_run` for async code: waits for the id without blocking the event loop."""
        handle = self.begin_run(name, params, tags, parent)
        await self.wait_created(handle)
        return handle

    async def wait_created(self, handle: RunHandle) -> str | None:
        """The run's MLflow id once its creation was attempted (None if the store was down)."""
        if handle.created is not None and handle.created.done():
            handle.run_id = handle.created.result()
            return handle.run_id
        if handle.run_id is None and handle.created is not None:
            waiting = asyncio.shield(asyncio.wrap_future(handle.created))
            handle.run_id = await asyncio.wait_for(waiting, _RUN_CREATE_TIMEOUT_S)
        return handle.run_id

    async def submit(self, record: RequestRecord, run: RunHandle) -> None:
        """Hand a record to the journal writer. Returns at once with `durability: batch` or
        `none`; with `always`, once the record is committed. Waits (without blocking the loop)
        while `max_queue` records are not in the journal yet (back-pressure)."""
        run.stats.add(record)
        writer = self._writer if self._writer is not None else self._open()
        if writer is None:
            return
        writer.stats.submitted += 1
        committed = writer.offer(record)
        if committed is None:
            committed = await self._wait_for_room(record)
        if self.settings.durability == "always" and not committed.done():
            await asyncio.wrap_future(committed)

    async def _wait_for_room(self, record: RequestRecord) -> Future[None]:
        writer = self._writer
        assert writer is not None
        if not self._warned_backpressure:
            logger.warning(
                "tracking: %d records are not in the journal yet; requests now wait for it (back-pressure)",
                writer.in_memory(),
            )
            self._warned_backpressure = True
        writer.stats.backpressure_waits += 1
        while True:
            await asyncio.wrap_future(writer.room())
            committed = writer.offer(record)
            if committed is not None:
                return committed

    def log_metrics(self, run: RunHandle, metrics: dict[str, float], step: int = 0) -> None:
        writer = self._open()
        if writer is not None:
            data = {"metrics": dict(metrics), "step": step, "timestamp_ms": int(time.time() * 1000)}
            writer.log_metrics(run.run_key, data)

    def end_run(
        self, run: RunHandle, status: str = "FINISHED", metrics: dict[str, float] | None = None
    ) -> None:
        """Journal the run's end: aggregate metrics plus `metrics`, then its terminal status."""
        if run.ended or self._closed:
            return
        run.ended = True
        writer = self._open()
        if writer is not None:
            all_metrics = {**run.stats.metrics(), **(metrics or {})}
            data = {"metrics": all_metrics, "status": status, "end_ms": int(time.time() * 1000)}
            writer.end_run(run.run_key, data)
            self.run_id(run)

    def run_id(self, run: RunHandle) -> str | None:
        """The run's MLflow id, if the store has created it by now."""
        if run.run_id is None and self._writer is not None:
            run.run_id = self._writer.run_id(run.run_key)
        return run.run_id

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Commit everything submitted to the journal and try to write all of it to the store;
        the result is truthy only when all of it is there (see `FlushResult`). Opens the
        journal if it was not yet (what earlier processes left in theirs is written too)."""
        if self._closed:
            # as close left it: nothing is written after a close
            return self._writer.result() if self._writer is not None else FlushResult()
        writer = self._open()
        if writer is None:
            return FlushResult()
        return writer.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> FlushResult:
        return await asyncio.to_thread(self.flush, timeout)

    def stats(self) -> WriterStats:
        return self._writer.stats if self._writer is not None else WriterStats()

    def status(self) -> TrackingStatus:
        """Health now: `error` is a `TrackingStoreError` while the store or the journal fails."""
        if self._writer is None:
            return TrackingStatus(healthy=True, error=None, pending=0, journal=None, dead_letter=None)
        return self._writer.status()

    def queued(self) -> int:
        """Records and run operations not in the store yet."""
        return self._writer.result().pending if self._writer is not None else 0

    def close(self) -> FlushResult:
        """Write what can be written; what cannot stays in the journal (logged once, with where).
        A tracker that never opened its journal has nothing to write."""
        with self._opening:
            if self._closed:
                return self._writer.result() if self._writer is not None else FlushResult()
            self._closed = True
        if self._writer is None:
            return FlushResult()
        return self._writer.close()


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else math.nan
