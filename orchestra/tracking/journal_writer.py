"""Getting submitted records into the journal: a bounded buffer and the thread that commits it.

The request's hot path only appends the record to a buffer (no encoding, no I/O). The journal
thread encodes what is buffered (sanitised JSON) and appends it in one transaction:

- `durability: batch` commits (fsync) at least every `sync_interval_s` or once half of
  `max_queue` records wait; producers wait once `max_queue` records are not committed yet, so a
  crash loses at most `max_queue` records (one unsynced batch);
- `always`: commits as soon as anything waits, and `submit` returns only after its record's
  commit (group commit: concurrent requests share one fsync);
- `none`: as `batch`, without fsync (a process crash loses nothing committed; a power loss may).

Run operations (create, end, metrics) are committed at once. When the journal cannot be written
(a full disk), records stay buffered, producers wait (back-pressure) and the commit is retried;
`failing` holds the error meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from orchestra.engine.records import RequestRecord
from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.tracking.codec import encode_operation, encode_record
from orchestra.tracking.dead_letter import DeadLetters
from orchestra.tracking.isolate import describe
from orchestra.tracking.journal import DONE, REQUEST, Entry, Journal
from orchestra.tracking.outcome import WriterStats

logger = get_logger("orchestra.tracking")

_RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0)
"""Waits between attempts to write a journal that failed (a full disk, usually)."""


@dataclass
class Operation:
    """A run operation to journal: create_run, end_run, metrics or attach_run."""

    kind: str
    run_key: str
    data: dict[str, Any]


@dataclass
class _Barrier:
    done: Future[bool] = field(default_factory=Future)


class JournalWriter:
    """The buffer in front of the journal and the thread that commits it; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        *,
        durability: str,
        max_records: int,
        sync_interval_s: float,
        stats: WriterStats,
        dead_letters: DeadLetters,
        on_commit: Callable[[], None],
        on_failure: Callable[[list[Entry]], None] = lambda entries: None,
    ) -> None:
        self.journal = journal
        self._always = durability == "always"
        self._limit = max_records
        self._trigger = max(1, max_records // 2)
        self._interval = sync_interval_s
        self._stats = stats
        self._dead_letters = dead_letters
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._condition = threading.Condition()
        self._items: list[Any] = []
        self._buffered = 0  # records in _items
        self._in_flight = 0  # records being committed
        self._urgent = False
        self._first_at = 0.0
        self._commit: Future[None] = Future()
        self._room: list[Future[None]] = []
        self._stopping = False
        self.failing: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="orchestra-journal", daemon=True)
        self._thread.start()

    # ---- producers -----------------------------------------------------------------------

    def offer(self, record: RequestRecord) -> Future[None] | None:
        """Buffer `record`: the future of its commit, or None while `max_queue` records are not
        committed yet (wait on `room()` and offer again)."""
        with self._condition:
            held = self._buffered + self._in_flight
            if held >= self._limit:
                return None
            if not self._items:
                self._first_at = time.monotonic()
                self._condition.notify()
            self._items.append(record)
            self._buffered += 1
            if held + 1 > self._stats.max_in_memory:
                self._stats.max_in_memory = held + 1
            if self._buffered == self._trigger:
                self._condition.notify()
            return self._commit

    def room(self) -> Future[None]:
        """Resolved once a record can be buffered again."""
        waiter: Future[None] = Future()
        with self._condition:
            if self._buffered + self._in_flight < self._limit:
                waiter.set_result(None)
            else:
                self._room.append(waiter)
        return waiter

    def put_operation(self, operation: Operation) -> None:
        """Buffer a run operation (never refused, committed at once)."""
        with self._condition:
            self._items.append(operation)
            self._urgent = True
            self._condition.notify()

    def barrier(self) -> Future[bool]:
        """Resolved once everything buffered before it was committed (True) or the attempt
        failed (False: it stays buffered and is retried)."""
        barrier = _Barrier()
        with self._condition:
            if not self._items and not self._in_flight:
                barrier.done.set_result(self.failing is None)
                return barrier.done
            self._items.append(barrier)
            self._urgent = True
            self._condition.notify()
        return barrier.done

    def in_memory(self) -> int:
        """Records not in the journal yet."""
        with self._condition:
            return self._buffered + self._in_flight

    def stop(self, timeout: float | None = None) -> int:
        """Commit what is buffered (one attempt if the journal fails) and stop; returns the
        number of records that could not be committed."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)
        return self.in_memory()

    # ---- the journal thread --------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while True:
            with self._condition:
                while not self._items and not self._stopping:
                    self._condition.wait()
                if not self._items:
                    return
                if not self._always:
                    self._wait_for_batch()
                batch, self._items = self._items, []
                self._in_flight, self._buffered = self._buffered, 0
                self._urgent = False
                commit, self._commit = self._commit, Future()
            encoded = self._encode(batch)
            ok = self._append(encoded)
            with self._condition:
                if ok:
                    self._in_flight = 0
                    waiters, self._room = self._room, []
                else:
                    self._put_back(encoded, commit)
                    waiters = []
            for item in batch:
                if isinstance(item, _Barrier):
                    item.done.set_result(ok)
            for waiter in waiters:
                waiter.set_result(None)
            if ok:
                failures = 0
                commit.set_result(None)
                self._on_commit()
                continue
            with self._condition:
                if self._stopping:
                    return
                self._condition.wait(_RETRY_S[min(failures, len(_RETRY_S) - 1)])
            failures += 1

    def _wait_for_batch(self) -> None:
        """Hold the buffer until it is due: an operation or barrier, half the limit, or the
        interval since its first record (called with the condition held)."""
        while not (self._urgent or self._stopping or self._buffered >= self._trigger):
            remaining = self._first_at + self._interval - time.monotonic()
            if remaining <= 0:
                return
            self._condition.wait(remaining)

    def _encode(self, batch: list[Any]) -> list[Entry | _Barrier]:
        """Journal entries for the batch (entries kept from a failed attempt are reused)."""
        encoded: list[Entry | _Barrier] = []
        for item in batch:
            if isinstance(item, Entry | _Barrier):
                encoded.append(item)
                continue
            try:
                if isinstance(item, RequestRecord):
                    encoded.append(Entry(REQUEST, item.run_key, encode_record(item)))
                else:
                    done = DONE if item.kind == "attach_run" else 0
                    encoded.append(Entry(item.kind, item.run_key, encode_operation(item.data), done, DONE))
            except Exception as err:  # cannot be serialised at all: keep what can be kept
                self._dead_letter_unencodable(item, err)
        return encoded

    def _dead_letter_unencodable(self, item: Any, err: Exception) -> None:
        kind = REQUEST if isinstance(item, RequestRecord) else getattr(item, "kind", "unknown")
        run_key = getattr(item, "run_key", "")
        try:
            self._dead_letters.add("journal", None, kind, run_key, SECRETS.redact(repr(item)), describe(err))
            self._stats.dead_lettered += 1
        except OSError:
            logger.exception("a %s could not be serialised nor dead-lettered; it is lost", kind)

    def _append(self, encoded: list[Entry | _Barrier]) -> bool:
        entries = [item for item in encoded if isinstance(item, Entry)]
        if not entries:
            return True
        try:
            self.journal.append(entries)
        except Exception as err:
            self._stats.journal_failures += 1
            self._stats.last_error = SECRETS.redact(f"writing the journal: {describe(err)}")
            if self.failing is None:
                logger.error(
                    "cannot write the tracking journal %s (%s); requests wait until it can "
                    "(back-pressure), and the write is retried",
                    self.journal.path,
                    describe(err),
                )
            self.failing = err
            self._on_failure(entries)
            return False
        records = sum(1 for entry in entries if entry.kind == REQUEST)
        self._stats.journaled += records
        if self.failing is not None:
            logger.warning("the tracking journal %s is writable again", self.journal.path)
            self.failing = None
        return True

    def _put_back(self, encoded: list[Entry | _Barrier], commit: Future[None]) -> None:
        """After a failed commit: the batch goes back in front of what arrived meanwhile, and
        the producers of both wait for the same next commit (called with the condition held)."""
        kept = [item for item in encoded if isinstance(item, Entry)]
        self._items = kept + self._items
        self._buffered += sum(1 for entry in kept if entry.kind == REQUEST)
        self._in_flight = 0
        if kept:
            self._urgent = self._urgent or any(entry.kind != REQUEST for entry in kept)
        newer, self._commit = self._commit, commit
        commit.add_done_callback(lambda _: newer.set_result(None))
