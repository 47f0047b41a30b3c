"""The background writer: every record reaches the journal first, then MLflow, off the hot path.

Three threads share the work:

- the journal thread (journal_writer.py) commits submitted records and run operations to this
  process's journal, as the durability level asks;
- the rows thread drains the journals' run operations and request-table parts (rows_sink.py);
- the traces thread drains their traces in batches, by default through a child process
  (trace_process.py) so that this CPU-heavy work does not slow requests down. With
  `traces: budget` (the default) it writes the traces a CPU budget affords (trace_budget.py) and
  marks the others deferred (`orchestra traces RUN_ID` writes them from the request table); each
  run's `traces_written` and `traces_deferred` metrics say how many of its requests have traces.

Nothing is dropped and nothing is written twice: what the store does not take stays in the
journal and is tried again (also after a restart, by whichever process adopts the journal);
what the store refuses goes to a dead-letter file. Memory stays bounded: a backlog waits in
the journal, on disk, not in queues.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from orchestra.engine.records import RequestRecord
from orchestra.errors import TrackingStoreError
from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.tracking.dead_letter import DeadLetters
from orchestra.tracking.isolate import describe
from orchestra.tracking.journal import (
    ATTACH_RUN,
    CREATE_RUN,
    END_RUN,
    METRICS,
    Entry,
    Journal,
    JournalClosed,
    store_identity,
)
from orchestra.tracking.journal_writer import JournalWriter, Operation
from orchestra.tracking.legacy_spool import import_legacy_spool
from orchestra.tracking.outcome import FlushResult, TrackingStatus, WriterStats
from orchestra.tracking.recovery import finish_crashed_runs
from orchestra.tracking.rows_sink import RowsSink, StoreOutage, readable
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.trace_budget import TraceBudget
from orchestra.tracking.trace_counts import TraceCounts
from orchestra.tracking.trace_sink import StoreOpener, TraceResult, TraceSink
from orchestra.tracking.uris import mask_uris_in, masked_uri

logger = get_logger("orchestra.tracking")

JOURNAL_DIR = "journal"
DEAD_LETTER_DIR = "dead-letter"
ADOPT_EVERY_S = 10.0
"""How often a running process looks for journals of processes that died meanwhile."""
_RETRY_S = (1.0, 2.0, 4.0, 8.0)
"""Waits between passes while the store fails (a flush tries at once)."""
FLUSH_PASSES = 8
"""Passes a flush makes while something is still owed without an outage: work that arrived
during a pass (an adopted journal), or other writers holding the store's lock (SQLite's
"database is locked"); contention passes, an outage does not."""


class TrackingWriter:
    """Owns the journals and every write to the tracking store; see the module docstring."""

    def __init__(self, settings: TrackingSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.stats = WriterStats()
        self.folder = Path(settings.spool_dir)
        self._clock = clock
        self._store_identity = store_identity(settings.tracking_uri, settings.experiment)
        self.journal = Journal.create(self.folder / JOURNAL_DIR, settings.durability, self._store_identity)
        self._journals: list[Journal] = [self.journal]
        self._retired: list[Journal] = []
        self._journals_lock = threading.Lock()
        self._letters: dict[str, DeadLetters] = {}
        self._run_ids: dict[str, str] = {}
        self._create_waiters: dict[str, Future[str | None]] = {}
        self._failing: dict[str, str | None] = {"rows": None, "traces": None}
        self._opener = StoreOpener(settings, self._note_failure)
        self._rows = RowsSink(
            settings,
            self.stats,
            self._run_ids,
            self._create_waiters,
            self.dead_letters,
            self._note_failure,
            clock,
        )
        self._budget = TraceBudget(
            settings.trace_cpu_ms_per_request,
            settings.trace_cpu_ms_per_s,
            settings.trace_cpu_burst_ms,
            clock,
        )
        self._earned_for = 0
        self.trace_counts = TraceCounts(clock)
        self._rows_wake = threading.Event()
        self._traces_wake = threading.Event()
        self._barrier_lock = threading.Lock()
        self._barriers: dict[str, list[threading.Event]] = {"rows": [], "traces": []}
        self._stopping = False
        self._closed: FlushResult | None = None
        import_legacy_spool(self.folder, self.journal)
        self._last_scan = clock()
        self.adopt_orphans()
        self._intake = JournalWriter(
            self.journal,
            durability=settings.durability,
            max_records=settings.max_queue,
            sync_interval_s=settings.sync_interval_s,
            stats=self.stats,
            dead_letters=self.dead_letters(self.journal),
            on_commit=self._committed,
            on_failure=self._not_journaled,
        )
        self._trace_backend: Any = self._start_trace_backend()
        self._threads = [
            threading.Thread(target=self._loop, args=("rows",), name="orchestra-tracking", daemon=True),
            threading.Thread(target=self._loop, args=("traces",), name="orchestra-traces", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ---- producer side -------------------------------------------------------------------

    def offer(self, record: RequestRecord) -> Future[None] | None:
        """Buffer a record for the journal: the future of its commit, or None when full."""
        return self._intake.offer(record)

    def room(self) -> Future[None]:
        return self._intake.room()

    def in_memory(self) -> int:
        return self._intake.in_memory()

    def create_run(self, run_key: str, data: dict[str, Any]) -> Future[str | None]:
        """Journal a run's creation; the future gives its MLflow id (None while the store is down)."""
        waiter: Future[str | None] = Future()
        self._create_waiters[run_key] = waiter
        self._intake.put_operation(Operation(CREATE_RUN, run_key, data))
        return waiter

    def end_run(self, run_key: str, data: dict[str, Any]) -> None:
        self._intake.put_operation(Operation(END_RUN, run_key, data))

    def log_metrics(self, run_key: str, data: dict[str, Any]) -> None:
        self._intake.put_operation(Operation(METRICS, run_key, data))

    def attach_run(self, run_key: str, run_id: str) -> None:
        self._run_ids[run_key] = run_id
        self._intake.put_operation(Operation(ATTACH_RUN, run_key, {"run_id": run_id}))

    def run_id(self, run_key: str) -> str | None:
        return self._run_ids.get(run_key)

    # ---- flush, status, close ------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Commit what is buffered, then have each sink try everything it owes; see FlushResult."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._intake.barrier().result(_remaining(deadline))
        except FutureTimeout:
            return self.result(timed_out=True)
        for attempt in range(FLUSH_PASSES):
            for sink in ("rows", "traces"):  # rows first: a run is created before its traces go
                if not self._barrier(sink).wait(_remaining(deadline)):
                    return self.result(timed_out=True)
            result = self.result()
            if not result.pending or (result.error is not None and not result.contended):
                return result
            # Owed and not failing: work that came during the pass (a dead process's journal,
            # adopted) or a lock other writers held; a pass ends both.
            if result.error is not None:
                pause = min(0.05 * 2**attempt, 2.0)
                time.sleep(pause if deadline is None else min(pause, _remaining(deadline) or 0.0))
        return self.result()

    def result(self, *, timed_out: bool = False) -> FlushResult:
        """Where everything submitted stands now (after `close`: as it was left)."""
        if self._closed is not None:
            return self._closed
        records = operations = 0
        for journal in self._active():
            try:
                owed_records, owed_operations = journal.pending_counts()
            except (JournalClosed, sqlite3.ProgrammingError):
                continue  # retired meanwhile: it owed nothing
            records += owed_records
            operations += owed_operations
        in_memory = self._intake.in_memory()
        stats = self.stats
        written = stats.submitted + stats.recovered_records - records - in_memory - stats.dead_lettered
        letters = self.folder / DEAD_LETTER_DIR
        return FlushResult(
            written=max(written, 0),
            pending=records + operations + in_memory,
            spooled=records + operations,
            dead_lettered=stats.dead_lettered,
            timed_out=timed_out,
            journal=str(self.journal.path),
            dead_letter=str(letters) if stats.dead_lettered else None,
            error=self._error_text(),
            traces_deferred=stats.traces_deferred,
        )

    def status(self) -> TrackingStatus:
        text = self._error_text()
        result = self.result()
        return TrackingStatus(
            healthy=text is None,
            error=TrackingStoreError(text) if text else None,
            pending=result.pending,
            journal=result.journal,
            dead_letter=result.dead_letter,
            traces_deferred=result.traces_deferred,
        )

    def close(self, timeout: float | None = None) -> FlushResult:
        """Flush, stop every thread and the trace process, and say (once) what is left where."""
        if self._closed is not None:
            return self._closed
        flushed = self.flush(timeout)
        self._stopping = True
        lost = self._intake.stop(timeout)
        self._rows_wake.set()
        self._traces_wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._trace_backend.close()
        final = self.result(timed_out=flushed.timed_out)
        self._closed = final
        self._report(final, lost)
        for journal in [*self._journals, *self._retired]:
            journal.close(delete_if_empty=True)
        return final

    def _report(self, result: FlushResult, lost: int) -> None:
        problems = []
        if result.spooled:
            problems.append(
                f"{result.spooled} record(s) and run operation(s) are not in the tracking store "
                f"{masked_uri(self.settings.tracking_uri)} yet ({result.error or 'store unavailable'}); "
                f"they are kept in {self.folder / JOURNAL_DIR} and written by the next orchestra "
                f"process that uses that spool folder"
            )
        if lost:
            problems.append(
                f"{lost} record(s) could not even reach the journal ({result.error}) and are lost"
            )
        if result.dead_lettered:
            problems.append(
                f"{result.dead_lettered} record(s) were refused by the store; "
                f"they are kept in {result.dead_letter}"
            )
        if problems:
            logger.warning("tracking: %s", "; ".join(problems))

    # ---- shared helpers ------------------------------------------------------------------

    def dead_letters(self, journal: Journal) -> DeadLetters:
        letters = self._letters.get(journal.id)
        if letters is None:
            letters = self._letters[journal.id] = DeadLetters(self.folder / DEAD_LETTER_DIR, journal.id)
        return letters

    def _active(self) -> list[Journal]:
        with self._journals_lock:
            return list(self._journals)

    def _not_journaled(self, entries: list[Entry]) -> None:
        """The journal cannot take these now: whoever waits for a run's creation learns that it
        is not in the store yet (it is created once the journal takes it)."""
        for entry in entries:
            if entry.kind == CREATE_RUN:
                waiter = self._create_waiters.pop(entry.run_key, None)
                if waiter is not None and waiter.set_running_or_notify_cancel():
                    waiter.set_result(None)

    def _committed(self) -> None:
        self._rows_wake.set()
        self._traces_wake.set()

    def _barrier(self, sink: str) -> threading.Event:
        event = threading.Event()
        with self._barrier_lock:
            self._barriers[sink].append(event)
        (self._rows_wake if sink == "rows" else self._traces_wake).set()
        return event

    def _start_trace_backend(self) -> Any:
        if self.settings.traces == "off":
            return TraceSink(self.settings)  # never used: no child process to start
        if self.settings.trace_writer == "process" and os.name == "posix":
            from orchestra.tracking.trace_process import TraceProcess

            return TraceProcess(self.settings, on_restart=self._count_restart)
        return TraceSink(self.settings)

    def _count_restart(self) -> None:
        self.stats.trace_process_restarts += 1

    def _note_failure(self, what: str, err: BaseException | str, sink: str = "rows") -> None:
        text = err if isinstance(err, str) else f"{what}: {describe(err)}"
        text = SECRETS.redact(mask_uris_in(text))
        self.stats.failures += 1
        self.stats.last_error = text
        if self._failing[sink] is None:
            logger.warning(
                "the tracking store %s failed (%s); the journal keeps everything and it is retried",
                masked_uri(self.settings.tracking_uri),
                text,
            )
        self._failing[sink] = text

    def _error_text(self) -> str | None:
        failing = self._intake.failing
        if failing is not None:
            return SECRETS.redact(
                f"the tracking journal {self.journal.path} cannot be written: {describe(failing)}"
            )
        for text in self._failing.values():
            if text is not None:
                return text
        return None

    # ---- the rows and traces threads -----------------------------------------------------

    def _loop(self, sink: str) -> None:
        wake = self._rows_wake if sink == "rows" else self._traces_wake
        work = self._rows_pass if sink == "rows" else self._traces_pass
        failures = 0
        while True:
            self._rest(
                sink, wake, _RETRY_S[min(failures - 1, 3)] if failures else self.settings.flush_interval_s
            )
            with self._barrier_lock:
                barriers, self._barriers[sink] = self._barriers[sink], []
            stopping = self._stopping
            try:
                ok = work(force=bool(barriers) or stopping)
            except Exception:  # a bug: say so, keep writing what can be written
                logger.exception("tracking %s pass failed", sink)
                ok = False
            if ok:
                failures = 0
                self._failing[sink] = None
            else:
                failures += 1
            for event in barriers:
                event.set()
            if stopping:
                return

    def _rest(self, sink: str, wake: threading.Event, delay: float) -> None:
        """Wait `delay`, or less when woken; while the store fails, only a flush or close cuts
        the wait short (new records alone do not: they are safe in the journal)."""
        deadline = self._clock() + delay
        retrying = delay > self.settings.flush_interval_s
        while True:
            wake.wait(max(deadline - self._clock(), 0.0))
            wake.clear()
            if not retrying or self._stopping or self._barriers[sink] or self._clock() >= deadline:
                return

    def _rows_pass(self, force: bool) -> bool:
        store = self._opener.get(force=force)
        if store is None:
            for journal in self._active():
                self._rows.abandon_creations(journal)
            return False
        try:
            for journal in self._active():
                self._rows.drain(journal, store, force=force)
        except StoreOutage:
            for journal in self._active():
                self._rows.abandon_creations(journal)
            return False
        self._retire_drained(store)
        if self._clock() - self._last_scan >= ADOPT_EVERY_S:
            self.adopt_orphans()
        return True

    def _traces_pass(self, force: bool) -> bool:
        self._close_retired()
        mode = self.settings.traces
        if mode == "budget":
            seen = self.stats.submitted + self.stats.recovered_records
            self._budget.earn(seen - self._earned_for)
            self._earned_for = seen
        for journal in self._active():
            try:
                upto = journal.last_seq()
                while keys := journal.pending_trace_keys(self.settings.batch_size, upto):
                    take = len(keys) if mode == "all" else 0
                    if mode == "budget":
                        take = self._budget.affordable(len(keys))
                    if take < len(keys):
                        self._defer(journal, keys[take:])
                    if take and not self._send_traces(journal, keys[:take], force):
                        return False
            except JournalClosed:
                continue
        return self._report_trace_counts(force)

    def _defer(self, journal: Journal, keys: list[tuple[int, str, str]]) -> None:
        """Leave these traces for `orchestra traces RUN_ID` (not decoded, not sent anywhere)."""
        journal.mark_traces((), deferred=[seq for seq, _, _ in keys])
        self.stats.traces_deferred += len(keys)
        for _, run_key, run_id in keys:
            self.trace_counts.add(run_key, run_id, deferred=1)

    def _report_trace_counts(self, force: bool) -> bool:
        """Log the changed runs' trace counts as run metrics (at a flush, else now and then)."""
        if not self.trace_counts.due(force):
            return True
        store = self._opener.get(force=force)
        if store is None:
            return False
        try:
            self.trace_counts.report(store)
        except Exception as err:
            self._note_failure("logging the runs' trace counts", err, sink="traces")
            return False
        return True

    def _send_traces(self, journal: Journal, keys: list[tuple[int, str, str]], force: bool) -> bool:
        payloads = journal.payloads([seq for seq, _, _ in keys])
        batch = [(seq, run_key, run_id, payloads[seq]) for seq, run_key, run_id in keys if seq in payloads]
        items = [(seq, run_id, payload) for seq, _, run_id, payload in batch]
        result: TraceResult = self._trace_backend.write(items, force)
        self._budget.spend(result.cpu_s, len(result.written), result.warmup)
        entries = {seq: (run_key, payload) for seq, run_key, _, payload in batch}
        runs = {seq: (run_key, run_id) for seq, run_key, run_id, _ in batch}
        for seq in result.written:
            self.trace_counts.add(*runs[seq], written=1)
        refused = []
        for seq, reason in result.refused:
            run_key, payload = entries[seq]
            try:
                self.dead_letters(journal).add("traces", seq, "request", run_key, readable(payload), reason)
            except OSError:
                continue  # not kept elsewhere: it stays in the journal
            refused.append(seq)
            self.stats.dead_lettered += 1
        journal.mark_traces(result.written, refused)
        self.stats.traces_written += len(result.written)
        if result.error is None and not (result.written or refused):
            result.error = "the trace writer answered without writing anything"
        if result.error is not None:
            self._note_failure("writing traces", result.error, sink="traces")
            return False
        return True

    # ---- journals of processes that died -------------------------------------------------

    def adopt_orphans(self) -> int:
        """Adopt the journals in the spool folder whose process is gone; returns how many."""
        self._last_scan = self._clock()
        with self._journals_lock:
            held = {journal.path for journal in [*self._journals, *self._retired]}
        adopted = 0
        for path in Journal.orphans(self.folder / JOURNAL_DIR, held):
            journal = Journal.adopt(path, self.settings.durability, self._store_identity)
            if journal is None:
                continue
            owed = sum(journal.recovered.values())
            self.stats.adopted_journals += 1
            self.stats.recovered_records += owed
            with self._journals_lock:
                self._journals.append(journal)
            adopted += 1
            logger.info(
                "adopted the tracking journal %s of a process that is gone (%d records owed)", path, owed
            )
        if adopted:
            self._committed()
        return adopted

    def _retire_drained(self, store: Any) -> None:
        """Adopted journals that owe nothing: their crashed runs are closed, they are retired."""
        for journal in self._active()[1:]:
            if not journal.is_empty():
                continue
            finish_crashed_runs(journal, store)
            with self._journals_lock:
                self._journals.remove(journal)
                self._retired.append(journal)

    def _close_retired(self) -> None:
        """Close retired journals (in the traces thread, which is then not reading them)."""
        with self._journals_lock:
            closing, self._retired = self._retired, []
        for journal in closing:
            journal.close(delete_if_empty=True)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
