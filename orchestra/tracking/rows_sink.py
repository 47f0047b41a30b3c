"""The rows side of a journal: run operations and the parquet parts of each run's request table.

One pass (`drain`) over a journal, in its order:

1. parts planned earlier but not confirmed written are written again, under the same name with
   the same rows (a crash between writing and marking them overwrites, never duplicates);
2. run operations: a run is created (or found again by its run key, so a replay does not
   create it twice), metrics logged with their own timestamps (a replay adds nothing), and a
   run is ended only once its rows before the end are written. Metrics wait in the journal
   until `METRICS_EVERY_S` (5 s, as the runs' trace counts) passed since the oldest of them,
   a flush, or another operation comes after them; then each run's waiting metrics go to the
   store in one call (one store commit instead of one per operation: a router logs its share
   every 100 requests);
3. rows: a run's unplanned rows become a part when there are `rows_per_part` of them, when the
   oldest waited `part_interval_s`, or when forced (a flush, a close). Without a flush they are
   counted at most every tenth of `part_interval_s` (a count scans them all).

A row the table cannot hold is dead-lettered and the rest of its part written; an outage
(`StoreOutage`) ends the pass, leaving everything else in the journal for the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from math import inf
from typing import TYPE_CHECKING, Any

from orchestra.tracking.codec import decode, decode_record
from orchestra.tracking.dead_letter import DeadLetters
from orchestra.tracking.isolate import describe, is_refusal, isolate
from orchestra.tracking.journal import CREATE_RUN, END_RUN, METRICS, Journal
from orchestra.tracking.outcome import WriterStats
from orchestra.tracking.rows import row_from_data, rows_table, to_row
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore

if TYPE_CHECKING:
    import pyarrow as pa


METRICS_EVERY_S = 5.0
"""Longest time logged metrics wait in the journal before they are sent (without a flush)."""


class StoreOutage(Exception):
    """The store cannot be written now; `error` says why."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


def readable(payload: bytes) -> Any:
    """A journal entry for a dead-letter file: its JSON, or its text if that cannot be parsed."""
    try:
        return decode(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def part_name(journal: Journal, part: int) -> str:
    """A part's artifact name: the same whenever the same planned part is written."""
    return f"part-{journal.id}-{part:06d}.parquet"


class RowsSink:
    """Drains the rows side of journals into the store; see the module docstring."""

    def __init__(
        self,
        settings: TrackingSettings,
        stats: WriterStats,
        run_ids: dict[str, str],
        create_waiters: dict[str, Future[str | None]],
        dead_letters: Callable[[Journal], DeadLetters],
        note_failure: Callable[[str, BaseException], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.run_ids = run_ids
        self.create_waiters = create_waiters
        self._dead_letters = dead_letters
        self._note_failure = note_failure
        self._clock = clock
        self._waiting_since: dict[tuple[str, str], float] = {}
        self._metrics_since: dict[str, float] = {}
        self._scanned_at: dict[str, float] = {}

    def drain(self, journal: Journal, store: MlflowStore, *, force: bool) -> None:
        """One pass over `journal`; raises `StoreOutage` when the store stops it."""
        self._resolve_runs(journal, store)
        for part, run_key in journal.unwritten_parts():
            if self._run_id(run_key) is not None:
                self._write_part(journal, store, part, run_key)
        metrics: list[tuple[int, str, dict[str, Any]]] = []
        for seq, kind, run_key, payload in journal.pending_operations():
            if kind == METRICS:
                metrics.append((seq, run_key, decode(payload)))
                continue
            self._apply_metrics(journal, store, metrics)
            metrics = []
            self._apply(journal, store, seq, kind, run_key, decode(payload))
        if metrics and (force or self._metrics_due(journal)):
            self._apply_metrics(journal, store, metrics)
        if not (force or self._scan_due(journal)):
            return
        for run_key, count, _ in journal.unplanned_rows():
            if self._run_id(run_key) is None:
                continue
            waiting = (journal.id, run_key)
            since = self._waiting_since.setdefault(waiting, self._clock())
            waited = self._clock() - since >= self.settings.part_interval_s
            if force or waited or count >= self.settings.rows_per_part:
                self._write_rows(journal, store, run_key)

    def _scan_due(self, journal: Journal) -> bool:
        """Whether to count the journal's unplanned rows now: at most every tenth of
        `part_interval_s` (the count is a scan of them all; a part is due only after
        `part_interval_s` or `rows_per_part` rows, so this delays it by that tenth at most)."""
        now = self._clock()
        if now - self._scanned_at.get(journal.id, -inf) < self.settings.part_interval_s / 10:
            return False
        self._scanned_at[journal.id] = now
        return True

    def abandon_creations(self, journal: Journal) -> None:
        """The store is down: whoever waits for a run's creation learns it is not there yet."""
        for _, kind, run_key, _ in journal.pending_operations():
            if kind == CREATE_RUN:
                self._resolve_waiter(run_key, None)

    # ---- runs ----------------------------------------------------------------------------

    def _run_id(self, run_key: str) -> str | None:
        return self.run_ids.get(run_key)

    def _resolve_runs(self, journal: Journal, store: MlflowStore) -> None:
        """Learn the ids of the journal's runs: known ones, and runs created elsewhere."""
        for state in journal.runs():
            if state.run_id is not None:
                self.run_ids.setdefault(state.run_key, state.run_id)
            elif not state.created_here and state.run_key not in self.run_ids:
                run_id = self._guard("looking up a run", store.find_run, state.run_key)
                if run_id is not None:
                    journal.set_run_id(state.run_key, run_id)
                    self.run_ids[state.run_key] = run_id

    def _resolve_waiter(self, run_key: str, run_id: str | None) -> None:
        waiter = self.create_waiters.pop(run_key, None)
        if waiter is not None and waiter.set_running_or_notify_cancel():
            waiter.set_result(run_id)

    # ---- operations ----------------------------------------------------------------------

    def _apply(
        self, journal: Journal, store: MlflowStore, seq: int, kind: str, run_key: str, data: dict[str, Any]
    ) -> None:
        run_id = self._run_id(run_key)
        if kind != CREATE_RUN and run_id is None:
            return  # its run is not in the store yet
        try:
            if kind == CREATE_RUN:
                self._create_run(journal, store, run_key, data)
            elif kind == END_RUN:
                assert run_id is not None
                self._write_rows(journal, store, run_key, before_seq=seq)
                store.end_run(run_id, data["metrics"], data["status"], data["end_ms"])
            elif kind == METRICS:
                assert run_id is not None
                store.log_metrics(run_id, data["metrics"], data.get("step", 0), data.get("timestamp_ms"))
        except StoreOutage:
            raise
        except Exception as err:
            if kind == CREATE_RUN:
                self._resolve_waiter(run_key, None)
            if not is_refusal(err):
                self._note_failure(f"applying a {kind}", err)
                raise StoreOutage(err) from err
            self._dead_letter(journal, "operations", seq, kind, run_key, data, err)
        journal.remove_operation(seq)
        self.stats.operations_applied += 1

    def _metrics_due(self, journal: Journal) -> bool:
        since = self._metrics_since.setdefault(journal.id, self._clock())
        return self._clock() - since >= METRICS_EVERY_S

    def _apply_metrics(
        self, journal: Journal, store: MlflowStore, metrics: list[tuple[int, str, dict[str, Any]]]
    ) -> None:
        """Waiting metric operations, in order: each run's in one store call (those of runs not
        in the store yet stay); one that the store refuses is found by applying them one by one."""
        self._metrics_since.pop(journal.id, None)
        by_run: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for seq, run_key, data in metrics:
            if self._run_id(run_key) is not None:
                by_run.setdefault(run_key, []).append((seq, data))
        for run_key, operations in by_run.items():
            run_id = self._run_id(run_key)
            assert run_id is not None
            if len(operations) == 1:
                seq, data = operations[0]
                self._apply(journal, store, seq, METRICS, run_key, data)
                continue
            steps = [
                (data["metrics"], data.get("step", 0), data.get("timestamp_ms")) for _, data in operations
            ]
            try:
                store.log_metric_steps(run_id, steps)
            except Exception as err:
                if not is_refusal(err):
                    self._note_failure(f"applying a {METRICS}", err)
                    raise StoreOutage(err) from err
                for seq, data in operations:
                    self._apply(journal, store, seq, METRICS, run_key, data)
                continue
            journal.remove_operations([seq for seq, _ in operations])
            self.stats.operations_applied += len(operations)

    def _create_run(self, journal: Journal, store: MlflowStore, run_key: str, data: dict[str, Any]) -> None:
        run_id = store.find_run(run_key)  # created before a crash (or a failed write) already?
        if run_id is None:
            parent_key = data.get("parent_run_key")
            run_id = store.create_run(
                data["name"],
                run_key=run_key,
                params=data["params"],
                tags=data["tags"],
                start_ms=data["start_ms"],
                parent_run_id=self._run_id(parent_key) if parent_key else None,
            )
        journal.set_run_id(run_key, run_id)
        self.run_ids[run_key] = run_id
        self._resolve_waiter(run_key, run_id)

    # ---- rows ----------------------------------------------------------------------------

    def _write_rows(
        self, journal: Journal, store: MlflowStore, run_key: str, before_seq: int | None = None
    ) -> None:
        """Every unplanned row of the run (before `before_seq`) into parts, written now."""
        self._waiting_since.pop((journal.id, run_key), None)
        for part, key in journal.unwritten_parts():
            if key == run_key:
                self._write_part(journal, store, part, run_key)
        while (part := journal.plan_part(run_key, self.settings.rows_per_part, before_seq)) is not None:
            self._write_part(journal, store, part, run_key)

    def _write_part(self, journal: Journal, store: MlflowStore, part: int, run_key: str) -> None:
        run_id = self._run_id(run_key)
        assert run_id is not None
        rows: list[tuple[int, dict[str, Any]]] = []
        refused: list[tuple[int, BaseException]] = []
        payloads: dict[int, bytes] = {}
        for seq, payload in journal.part_entries(part):
            payloads[seq] = payload
            try:
                data = decode(payload)
                row = row_from_data(data, run_id)
                rows.append((seq, row if row is not None else to_row(decode_record(data), run_id)))
            except Exception as err:
                refused.append((seq, err))
        import pyarrow as pa

        tables: list[pa.Table] = []
        checked = isolate(  # built here, so every failure is the rows' own
            rows, lambda chunk: tables.append(rows_table([row for _, row in chunk])), refused=lambda _: True
        )
        refused += [(seq, err) for (seq, _), err in checked.refused]
        if tables:
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            try:
                store.write_request_part(run_id, table, part_name(journal, part))
            except Exception as err:
                self._note_failure("writing the request table", err)
                raise StoreOutage(err) from err
        for seq, err in refused:
            self._dead_letter(journal, "rows", seq, "request", run_key, readable(payloads[seq]), err)
        journal.mark_part(part, [seq for seq, _ in refused])
        self.stats.rows_written += len(checked.written)
        self.stats.parts_written += 1 if tables else 0

    def _dead_letter(
        self, journal: Journal, sink: str, seq: int, kind: str, run_key: str, entry: Any, err: BaseException
    ) -> None:
        try:
            self._dead_letters(journal).add(sink, seq, kind, run_key, entry, describe(err))
        except OSError as failure:  # cannot be kept elsewhere yet: it stays in the journal
            raise StoreOutage(failure) from failure
        self.stats.dead_lettered += 1

    def _guard(self, what: str, step: Callable[..., Any], *args: Any) -> Any:
        try:
            return step(*args)
        except Exception as err:
            self._note_failure(what, err)
            raise StoreOutage(err) from err
