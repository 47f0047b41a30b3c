"""What the tracker reports: counters, a flush's result and its health.

result = tracker.flush()
if not result:                      # something is not in the store yet (or was refused)
    print(result)                   # written 98, pending 2 (2 in the journal), dead-lettered 0
result.traces_deferred              # requests whose trace is left for `orchestra traces RUN_ID`
tracker.status().error              # a TrackingStoreError while the store or journal fails
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.errors import TrackingStoreError


@dataclass
class WriterStats:
    """Counters the writer keeps; read them with `Tracker.stats()`."""

    submitted: int = 0
    journaled: int = 0
    rows_written: int = 0
    parts_written: int = 0
    traces_written: int = 0
    traces_deferred: int = 0
    """Requests whose trace was deferred (`traces: budget` or `off`); see `FlushResult`."""
    operations_applied: int = 0
    dead_lettered: int = 0
    adopted_journals: int = 0
    recovered_records: int = 0
    failures: int = 0
    journal_failures: int = 0
    trace_process_restarts: int = 0
    last_error: str | None = None
    backpressure_waits: int = 0
    max_in_memory: int = 0
    """The most records held in memory at once before they reached the journal."""


_CONTENTION = ("database is locked", "database is busy", "database table is locked")


@dataclass(frozen=True)
class FlushResult:
    """Where everything submitted stands after a flush; truthy only when all of it is in the store.

    `written`: records in the store (request row, and trace written or deferred); `pending`:
    records and run operations not in the store yet; `spooled`: of those, how many are safe in the
    journal (the rest are still in memory, e.g. while the journal's disk is full); `dead_lettered`:
    records the store refused, kept in the dead-letter file. A flush that timed out is never a
    success.

    `traces_deferred`: of the records written, how many have no MLflow trace yet, because the
    trace-writing CPU budget (`traces: budget`, the default) or `traces: off` left it for later.
    A deferred trace is not a lost record: the request table holds everything the trace shows
    (`orchestra traces RUN_ID` writes it from there), so a flush with deferred traces is still
    truthy; each run's `traces_deferred` metric says how many of its requests wait for one."""

    written: int = 0
    pending: int = 0
    spooled: int = 0
    dead_lettered: int = 0
    timed_out: bool = False
    journal: str | None = None
    dead_letter: str | None = None
    error: str | None = None
    traces_deferred: int = 0

    def __bool__(self) -> bool:
        return not self.timed_out and self.pending == 0 and self.dead_lettered == 0

    @property
    def contended(self) -> bool:
        """The only failure is other writers holding the store's lock (SQLite's "database is
        locked"): waiting ends it, unlike an outage."""
        return self.error is not None and any(words in self.error.lower() for words in _CONTENTION)

    def __str__(self) -> str:
        text = (
            f"written {self.written}, pending {self.pending} ({self.spooled} in the journal), "
            f"dead-lettered {self.dead_lettered}"
        )
        if self.traces_deferred:
            text += f", traces deferred {self.traces_deferred} (orchestra traces RUN_ID writes them)"
        if self.timed_out:
            text += ", timed out"
        return text + (f" ({self.error})" if self.error else "")


@dataclass(frozen=True)
class TrackingStatus:
    """The tracker's health: `error` holds why the store or the journal cannot be written now."""

    healthy: bool
    error: TrackingStoreError | None
    pending: int
    journal: str | None
    dead_letter: str | None
    traces_deferred: int = 0
    """Requests whose trace is deferred so far (see `FlushResult.traces_deferred`)."""
