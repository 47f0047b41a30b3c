"""How many of each run's requests have an MLflow trace, and how many are deferred: run metrics.

    counts = TraceCounts()
    counts.add(run_key, run_id, written=1)      # or deferred=1
    if counts.due(force=True):
        counts.report(store)                    # metrics traces_written / traces_deferred on each run

A run is never silently incomplete: its `traces_deferred` metric says how many of its requests
have no trace yet (their rows are in the request table; `orchestra traces RUN_ID` writes them,
and sets both metrics from what the store then holds). The counts are this process's: a run
written by several processes at once (a sweep's Ray shards) shows the last one's until
`orchestra traces RUN_ID` recounts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TRACES_WRITTEN = "traces_written"
TRACES_DEFERRED = "traces_deferred"
REPORT_EVERY_S = 5.0
"""Between flushes, changed counts are logged at most this often."""


@dataclass
class RunTraces:
    run_id: str
    written: int = 0
    deferred: int = 0


class TraceCounts:
    """Per run: traces written and deferred by this process; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.runs: dict[str, RunTraces] = {}
        self._changed: set[str] = set()
        self._reported_at = clock()

    def add(self, run_key: str, run_id: str, *, written: int = 0, deferred: int = 0) -> None:
        run = self.runs.get(run_key)
        if run is None:
            run = self.runs[run_key] = RunTraces(run_id)
        run.written += written
        run.deferred += deferred
        self._changed.add(run_key)

    def due(self, force: bool) -> bool:
        """Whether counts changed and should be logged now (always at a flush)."""
        return bool(self._changed) and (force or self._clock() - self._reported_at >= REPORT_EVERY_S)

    def report(self, store: Any) -> None:
        """Log the changed runs' counts (a run whose logging fails stays changed)."""
        for run_key in sorted(self._changed):
            run = self.runs[run_key]
            store.log_metrics(run.run_id, {TRACES_WRITTEN: run.written, TRACES_DEFERRED: run.deferred})
            self._changed.discard(run_key)
        self._reported_at = self._clock()
