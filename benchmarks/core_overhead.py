"""Orchestration overhead with logging on, and how fast a sweep's requests reach MLflow.

Part 1: 2,000 sequential requests, each to 3 scripted providers that answer instantly, with a
lexical consensus; the request's processing time is then all orchestration (routing, fan-out,
consensus, building the record, queueing it). Logging is on, writing to an embedded SQLite store.

Part 2: a 10,000-request sweep (100 concurrent) on the same setup. A sampler records when the
10,000th row reached the request table and the 10,000th trace reached the store; then the store
is read back: rows in the run's request table, and traces with all their spans (SQL count).

    .venv/bin/python benchmarks/core_overhead.py [--requests 2000] [--sweep 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from orchestra import FunctionConnector, Orchestra
from orchestra.tracking.reader import read_request_table
from orchestra.tracking.settings import TrackingSettings

PROVIDERS = ("alpha", "beta", "gamma")
SPANS_PER_TRACE = 1 + 1 + len(PROVIDERS) + 1  # root, route, one per call, consensus


def build(folder: Path, *, enabled: bool = True) -> Orchestra:
    config = {
        "models": {name: {"type": "function"} for name in PROVIDERS},
        "routing": {"rules": [{"providers": list(PROVIDERS), "require_consensus": True}]},
    }
    tracking = TrackingSettings(
        enabled=enabled,
        tracking_uri="sqlite:///mlflow.db",
        artifact_location="artifacts",
        spool_dir="spool",
        experiment="benchmark",
        traces="all",  # this benchmark times every trace reaching the store
        base_dir=folder,
    ).resolved()
    orch = Orchestra(config, tracking=tracking)
    for name in PROVIDERS:
        orch.model_registry.register_connector(
            name, FunctionConnector(name, lambda request, n=name: f"the answer is 42, says {n}")
        )
    return orch


async def overhead(orch: Orchestra, n: int) -> list[float]:
    await orch.process_request("warm-up", user_id="bench")  # first consensus imports scikit-learn
    times = []
    async with orch.run("overhead"):
        for i in range(n):
            result = await orch.process_request(f"question {i}", task_type="bench", user_id="bench")
            times.append(result["metadata"]["processing_time_ms"])
    return times


class Sampler:
    """Polls the writer's counters; remembers when each first reached the target."""

    def __init__(self, orch: Orchestra, rows_target: int, traces_target: int) -> None:
        self.orch, self.rows_target, self.traces_target = orch, rows_target, traces_target
        self.started = time.perf_counter()
        self.rows_at: float | None = None
        self.traces_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._check()
            time.sleep(0.01)

    def _check(self) -> None:
        stats = self.orch.tracker.stats()
        now = time.perf_counter() - self.started
        if self.rows_at is None and stats.rows_written >= self.rows_target:
            self.rows_at = now
        if self.traces_at is None and stats.traces_written >= self.traces_target:
            self.traces_at = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._check()


async def sweep(orch: Orchestra, n: int, concurrency: int = 100) -> tuple[str, float, Sampler]:
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            await orch.process_request(f"sweep prompt {i}", task_type="sweep", user_id=f"user{i % 50}")

    stats = orch.tracker.stats()
    async with orch.run("sweep") as scope:
        sampler = Sampler(orch, stats.rows_written + n, stats.traces_written + n)
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        requests_done = time.perf_counter() - start
    await orch.flush()
    sampler.stop()
    return scope.run_id, requests_done, sampler


def complete_traces(database: Path, run_id: str) -> int:
    """Traces linked to the run that hold every span they should."""
    query = """
        SELECT COUNT(*) FROM (
            SELECT s.trace_id FROM spans s
            JOIN entity_associations a ON a.source_id = s.trace_id AND a.destination_id = ?
            GROUP BY s.trace_id HAVING COUNT(*) = ?
        )
    """
    with sqlite3.connect(database) as connection:
        return connection.execute(query, (run_id, SPANS_PER_TRACE)).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--sweep", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="orchestra-bench-") as folder_name:
        folder = Path(folder_name)
        bare = build(folder / "off", enabled=False)
        off_times = asyncio.run(overhead(bare, args.requests))
        bare.close()

        orch = build(folder / "on")
        on_times = asyncio.run(overhead(orch, args.requests))
        orch.flush_sync()
        run_id, requests_s, sampler = asyncio.run(sweep(orch, args.sweep))
        orch.close()

        table = read_request_table(orch.tracking_settings, run_id)
        rows = table["request_id"].n_unique()
        traces = complete_traces(folder / "on" / "mlflow.db", run_id)

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1]

    print(
        f"overhead, logging off : p50 {statistics.median(off_times):.3f} ms, p95 {pct(off_times, 95):.3f} ms"
    )
    print(f"overhead, logging on  : p50 {statistics.median(on_times):.3f} ms, p95 {pct(on_times, 95):.3f} ms")
    print(f"sweep of {args.sweep} requests: requests done in {requests_s:.1f} s")
    print(f"  rows in the request table: {rows} (all written after {sampler.rows_at:.1f} s)")
    print(f"  complete traces ({SPANS_PER_TRACE} spans): {traces} (all after {sampler.traces_at:.1f} s)")
    lost = (args.sweep - rows) + (args.sweep - traces)
    print(f"RESULT overhead_p50_ms {statistics.median(on_times):.3f}")
    print(f"RESULT store_requests_per_s {args.sweep / sampler.rows_at:.0f}")
    print(f"RESULT traces_per_s {args.sweep / sampler.traces_at:.0f}")
    print(f"RESULT lost_requests {lost}")


if __name__ == "__main__":
    main()
