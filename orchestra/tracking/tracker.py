"""The tracker: runs (one per configuration) and every request, written off the hot path.

tracker = Tracker(load_tracking_settings())
run = tracker.start_run("always-gpt4", params={"routing": "rules"})
await tracker.submit(record)          # returns at once; the writer thread logs it
tracker.end_run(run)                   # aggregates become run metrics
"""

from __future__ import annotations

import asyncio
import atexit
import math
import time
import uuid
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.tracking.records import RequestRecord
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.writer import CreateRun, EndRun, LogMetrics, TrackingWriter, WriterStats

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
    """Runs and request records -> MLflow, through one background `TrackingWriter`."""

    def __init__(self, settings: TrackingSettings) -> None:
        self.settings = settings
        SECRETS.register_environment()
        self._writer = TrackingWriter(settings) if settings.enabled else None
        self._warned_backpressure = False
        self._closed = False
        reference = weakref.ref(self)
        atexit.register(lambda: (tracker := reference()) is not None and tracker.close())

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def begin_run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunHandle:
        """Queue a run's creation and return at once; `wait_created` gives its MLflow id."""
        op = CreateRun(
            run_key=uuid.uuid4().hex,
            name=name,
            params={k: str(v) for k, v in (params or {}).items()},
            tags={k: str(v) for k, v in (tags or {}).items()},
            start_ms=int(time.time() * 1000),
            parent_run_key=parent.run_key if parent else None,
        )
        handle = RunHandle(op.run_key, name, None, created=op.result)
        if self._writer is None:
            op.result.set_result(None)
        else:
            self._writer.put(op)
        return handle

    def attach_run(self, run_id: str, run_key: str, name: str) -> RunHandle:
        """A handle on a run that already exists (e.g. a sweep's parent, when resuming)."""
        if self._writer is not None:
            self._writer._run_ids[run_key] = run_id
        return RunHandle(run_key, name, run_id)

    def start_run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunHandle:
        """Create a run and wait for its id (None while the store is down: work is spooled)."""
        handle = self.begin_run(name, params, tags, parent)
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
        """Queue a request record; waits (without blocking the loop) only when the queue is full."""
        run.stats.add(record)
        if self._writer is None or self._writer.offer(record):
            return
        await self._put_async(record)

    async def _put_async(self, item: Any) -> None:
        assert self._writer is not None
        if self._writer.offer(item):
            return
        if not self._warned_backpressure:
            logger.warning(
                "tracking writer is %d items behind; requests now wait for it (back-pressure)",
                self._writer.queued(),
            )
            self._warned_backpressure = True
        self._writer.stats.backpressure_waits += 1
        while not self._writer.offer(item):  # noqa: ASYNC110 (a thread queue: poll it)
            await asyncio.sleep(0.005)

    def log_metrics(self, run: RunHandle, metrics: dict[str, float], step: int = 0) -> None:
        if self._writer is not None:
            self._writer.put(LogMetrics(run.run_key, dict(metrics), step))

    def end_run(
        self, run: RunHandle, status: str = "FINISHED", metrics: dict[str, float] | None = None
    ) -> None:
        """Queue the run's end: aggregate metrics plus `metrics`, then its terminal status."""
        if run.ended or self._closed:
            return
        run.ended = True
        if self._writer is not None:
            all_metrics = {**run.stats.metrics(), **(metrics or {})}
            self._writer.put(EndRun(run.run_key, all_metrics, status, int(time.time() * 1000)))
            self.run_id(run)

    def run_id(self, run: RunHandle) -> str | None:
        """The run's MLflow id, if the store has created it by now."""
        if run.run_id is None and self._writer is not None:
            run.run_id = self._writer.run_id(run.run_key)
        return run.run_id

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is written or spooled (at once once closed)."""
        return True if self._writer is None or self._closed else self._writer.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    def stats(self) -> WriterStats:
        return self._writer.stats if self._writer is not None else WriterStats()

    def queued(self) -> int:
        return self._writer.queued() if self._writer is not None else 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.close()


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else math.nan
