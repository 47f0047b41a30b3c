"""The journal: one process's append-only log of tracking work, a SQLite file in WAL mode.

Every request record and run operation is appended here before the writers touch the store;
the writers read it back, write to MLflow, and mark each entry done (rows and traces apart).
An entry is deleted once both are done, so the file holds only what the store does not have.

Files live in `<spool_dir>/journal/`: `<id>.db` (with SQLite's `-wal` and `-shm`) and
`<id>.lock`, which its process holds with `flock` while it lives. A process that finds a
journal whose lock is free, and that writes to the same store and experiment, adopts it: its
owner died (or closed while the store was down).

    journal = Journal.create(folder, "batch", store_identity(uri, "orchestra"))
    journal.append([Entry("request", run_key, payload)])
    journal.pending_traces(limit=250)         # [(seq, run_key, run_id, payload), ...]

Each thread gets its own connection; SQLite serialises the writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestra.logs import get_logger
from orchestra.tracking.locks import try_lock, unlock, write_owner

logger = get_logger("orchestra.tracking")

Durability = Literal["batch", "always", "none"]
PENDING, DONE, DEAD, DEFERRED = 0, 1, 2, 3
"""Per-sink state of an entry: not written yet, written (or not owed), refused (dead-lettered),
deferred (a trace left for `orchestra traces RUN_ID`: its row holds everything it needs)."""
REQUEST, CREATE_RUN, END_RUN = "request", "create_run", "end_run"
METRICS, ATTACH_RUN = "metrics", "attach_run"
_SYNC = {"always": "FULL", "batch": "FULL", "none": "NORMAL"}
"""WAL commits are fsynced with FULL; NORMAL leaves them in the OS cache (safe from a process
crash, not from a power loss). Batching into commits is the journal writer's job."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    run_key TEXT NOT NULL,
    payload BLOB NOT NULL,
    part INTEGER,
    rows_done INTEGER NOT NULL DEFAULT 0,
    traces_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_rows ON entries(kind, run_key, seq) WHERE rows_done = 0;
CREATE INDEX IF NOT EXISTS entries_traces ON entries(seq) WHERE traces_done = 0;
CREATE INDEX IF NOT EXISTS entries_part ON entries(part) WHERE part IS NOT NULL;
CREATE TABLE IF NOT EXISTS parts (
    part INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key TEXT NOT NULL,
    written INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY,
    run_id TEXT,
    created_here INTEGER NOT NULL DEFAULT 0,
    ended INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    """One item to append: a request record or a run operation, already encoded."""

    kind: str
    run_key: str
    payload: bytes
    rows_done: int = PENDING
    traces_done: int = PENDING


@dataclass(frozen=True)
class RunState:
    run_key: str
    run_id: str | None
    created_here: bool
    ended: bool


class JournalClosed(Exception):
    """The journal was closed (drained and retired): nothing is owed through it any more."""


class Journal:
    """One journal file and its lock; see the module docstring."""

    def __init__(self, path: Path, lock_fd: int, durability: Durability) -> None:
        self.path = path
        self.id = path.stem
        self.durability = durability
        self._lock_fd: int | None = lock_fd
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False
        self.recovered: dict[str, int] = {}
        """For an adopted journal: per run, the records it still owed when it was adopted."""
        self._connection().executescript(_SCHEMA)

    # ---- files and ownership -------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, durability: Durability, store: str) -> Journal:
        """A new journal for this process, locked for as long as it lives. `store` names where
        its entries go (see `store_identity`): only a process writing there adopts it."""
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():x}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lock_fd = try_lock(folder / f"{name}.lock")
        assert lock_fd is not None  # a fresh file cannot be locked by anyone else
        write_owner(lock_fd)
        with contextlib.closing(_sqlite(folder / f"{name}.db")) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        journal = cls(folder / f"{name}.db", lock_fd, durability)
        journal._connection().execute("INSERT INTO meta(key, value) VALUES ('store', ?)", (store,))
        return journal

    @classmethod
    def adopt(cls, path: Path, durability: Durability, store: str) -> Journal | None:
        """The journal at `path`, if its owner is gone (its lock is free) and its entries go to
        the same `store`; else None."""
        lock_fd = try_lock(path.with_suffix(".lock"))
        if lock_fd is None:
            return None
        if not path.exists():  # drained and deleted by its owner just now
            path.with_suffix(".lock").unlink(missing_ok=True)
            unlock(lock_fd)
            return None
        try:
            journal = cls(path, lock_fd, durability)
            if journal.store() not in (store, None):
                journal.close(delete_if_empty=False)
                return None
            journal.recovered = journal.pending_records_by_run()
        except sqlite3.DatabaseError as err:
            logger.error("journal %s cannot be read (%s); left in place for inspection", path, err)
            unlock(lock_fd)
            return None
        write_owner(lock_fd, " (adopted)")
        return journal

    def store(self) -> str | None:
        found = self._read("SELECT value FROM meta WHERE key = 'store'")
        return found[0][0] if found else None

    @staticmethod
    def orphans(folder: Path, exclude: set[Path]) -> list[Path]:
        """Journal files in `folder` not held by this process, oldest first (adopt to check)."""
        if not folder.is_dir():
            return []
        return sorted((p for p in folder.glob("*.db") if p not in exclude), key=lambda p: p.name)

    def close(self, *, delete_if_empty: bool) -> bool:
        """Close every connection and release the lock; with `delete_if_empty`, remove the files
        of a journal that owes nothing. True when the files were removed."""
        empty = False
        if delete_if_empty:
            with contextlib.suppress(sqlite3.Error):
                empty = self.is_empty()
        with self._guard:
            self._closed = True
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
            self._local = threading.local()
        if empty:
            for suffix in ("-wal", "-shm", ""):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.path.with_suffix(".lock").unlink(missing_ok=True)
        if self._lock_fd is not None:
            unlock(self._lock_fd)
            self._lock_fd = None
        return empty

    # ---- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            with self._guard:
                if self._closed:  # connecting would create an empty file where it was deleted
                    raise JournalClosed(str(self.path))
                connection = _sqlite(self.path)
                connection.execute(f"PRAGMA synchronous={_SYNC[self.durability]}")
                self._local.connection = connection
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken at once, so that two writers never deadlock)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
        return self._connection().execute(sql, parameters).fetchall()

    # ---- appending -----------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Append `entries` in one transaction (durable per the durability level when it returns)."""
        with self._write() as connection:
            connection.executemany(
                "INSERT INTO entries(kind, run_key, payload, rows_done, traces_done) VALUES (?, ?, ?, ?, ?)",
                [(e.kind, e.run_key, e.payload, e.rows_done, e.traces_done) for e in entries],
            )
            for entry in entries:
                if entry.kind == CREATE_RUN:
                    connection.execute(
                        "INSERT OR IGNORE INTO runs(run_key, created_here) VALUES (?, 1)", (entry.run_key,)
                    )
                elif entry.kind == ATTACH_RUN:
                    run_id = json.loads(entry.payload)["run_id"]
                    connection.execute(
                        "INSERT INTO runs(run_key, run_id) VALUES (?, ?) "
                        "ON CONFLICT(run_key) DO UPDATE SET run_id = excluded.run_id",
                        (entry.run_key, run_id),
                    )
                elif entry.kind == END_RUN:
                    connection.execute("UPDATE runs SET ended = 1 WHERE run_key = ?", (entry.run_key,))

    def last_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM entries")[0][0]

    # ---- runs ----------------------------------------------------------------------------

    def set_run_id(self, run_key: str, run_id: str) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT INTO runs(run_key, run_id) VALUES (?, ?) "
                "ON CONFLICT(run_key) DO UPDATE SET run_id = excluded.run_id",
                (run_key, run_id),
            )

    def note_unknown_runs(self, run_keys: set[str]) -> None:
        """Runs created elsewhere (their ids are looked up in the store by run key)."""
        with self._write() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO runs(run_key) VALUES (?)", [(key,) for key in sorted(run_keys)]
            )

    def runs(self) -> list[RunState]:
        rows = self._read("SELECT run_key, run_id, created_here, ended FROM runs")
        return [RunState(key, run_id, bool(created), bool(ended)) for key, run_id, created, ended in rows]

    def mark_run_ended(self, run_key: str) -> None:
        with self._write() as connection:
            connection.execute("UPDATE runs SET ended = 1 WHERE run_key = ?", (run_key,))

    # ---- the rows side: run operations and request-table parts ---------------------------

    def pending_operations(self) -> list[tuple[int, str, str, bytes]]:
        """Run operations not applied yet, in order: (seq, kind, run_key, payload)."""
        return self._read(
            "SELECT seq, kind, run_key, payload FROM entries "
            "WHERE rows_done = 0 AND kind IN (?, ?, ?) ORDER BY seq",
            (CREATE_RUN, END_RUN, METRICS),
        )

    def remove_operation(self, seq: int) -> None:
        """The operation is applied (or dead-lettered): it is owed no more."""
        with self._write() as connection:
            connection.execute("DELETE FROM entries WHERE seq = ?", (seq,))

    def remove_operations(self, seqs: Sequence[int]) -> None:
        """These operations are applied: they are owed no more (one transaction)."""
        with self._write() as connection:
            connection.executemany("DELETE FROM entries WHERE seq = ?", [(seq,) for seq in seqs])

    def unplanned_rows(self) -> list[tuple[str, int, int]]:
        """Per run, request rows not yet given to a part: (run_key, count, first seq)."""
        return self._read(
            "SELECT run_key, COUNT(*), MIN(seq) FROM entries "
            "WHERE kind = ? AND rows_done = 0 AND part IS NULL GROUP BY run_key",
            (REQUEST,),
        )

    def plan_part(self, run_key: str, limit: int, before_seq: int | None = None) -> int | None:
        """Give the run's oldest unplanned rows (at most `limit`, only those before `before_seq`)
        to a new part, durably, before it is written: a part written again after a crash then
        holds the same rows under the same name, replacing itself instead of duplicating rows."""
        bound = before_seq if before_seq is not None else 2**62
        with self._write() as connection:
            seqs = [
                seq
                for (seq,) in connection.execute(
                    "SELECT seq FROM entries WHERE kind = ? AND run_key = ? AND rows_done = 0 "
                    "AND part IS NULL AND seq < ? ORDER BY seq LIMIT ?",
                    (REQUEST, run_key, bound, limit),
                )
            ]
            if not seqs:
                return None
            part = connection.execute("INSERT INTO parts(run_key) VALUES (?)", (run_key,)).lastrowid
            connection.executemany("UPDATE entries SET part = ? WHERE seq = ?", [(part, s) for s in seqs])
        return part

    def unwritten_parts(self) -> list[tuple[int, str]]:
        """Parts planned but not confirmed written: (part, run_key), oldest first."""
        return self._read("SELECT part, run_key FROM parts WHERE written = 0 ORDER BY part")

    def part_entries(self, part: int) -> list[tuple[int, bytes]]:
        return self._read(
            "SELECT seq, payload FROM entries WHERE part = ? AND rows_done = 0 ORDER BY seq", (part,)
        )

    def rows_pending_before(self, run_key: str, seq: int) -> bool:
        found = self._read(
            "SELECT 1 FROM entries WHERE kind = ? AND run_key = ? AND rows_done = 0 AND seq < ? LIMIT 1",
            (REQUEST, run_key, seq),
        )
        return bool(found)

    def mark_part(self, part: int, refused: Sequence[int] = ()) -> None:
        """The part is in the store; `refused` rows (dead-lettered) were left out of it."""
        with self._write() as connection:
            connection.executemany("UPDATE entries SET rows_done = 2 WHERE seq = ?", [(s,) for s in refused])
            connection.execute("UPDATE entries SET rows_done = 1 WHERE part = ? AND rows_done = 0", (part,))
            connection.execute("DELETE FROM entries WHERE part = ? AND traces_done > 0", (part,))
            connection.execute("DELETE FROM parts WHERE part = ?", (part,))

    # ---- the traces side -----------------------------------------------------------------

    def pending_traces(self, limit: int, upto_seq: int) -> list[tuple[int, str, str, bytes]]:
        """The oldest records (up to `upto_seq`) whose trace is owed and whose run the store
        has: (seq, run_key, run_id, payload)."""
        return self._read(
            "SELECT e.seq, e.run_key, r.run_id, e.payload FROM entries e "
            "JOIN runs r ON r.run_key = e.run_key "
            "WHERE e.traces_done = 0 AND e.seq <= ? AND r.run_id IS NOT NULL ORDER BY e.seq LIMIT ?",
            (upto_seq, limit),
        )

    def pending_trace_keys(self, limit: int, upto_seq: int) -> list[tuple[int, str, str]]:
        """`pending_traces` without the payloads: (seq, run_key, run_id)."""
        return self._read(
            "SELECT e.seq, e.run_key, r.run_id FROM entries e "
            "JOIN runs r ON r.run_key = e.run_key "
            "WHERE e.traces_done = 0 AND e.seq <= ? AND r.run_id IS NOT NULL ORDER BY e.seq LIMIT ?",
            (upto_seq, limit),
        )

    def payloads(self, seqs: Sequence[int]) -> dict[int, bytes]:
        """The payloads of entries `seqs` (those still in the journal)."""
        found: dict[int, bytes] = {}
        for start in range(0, len(seqs), 500):
            chunk = list(seqs[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(self._read(f"SELECT seq, payload FROM entries WHERE seq IN ({marks})", chunk))
        return found

    def mark_traces(
        self, written: Sequence[int], refused: Sequence[int] = (), deferred: Sequence[int] = ()
    ) -> None:
        """Traces written, refused (dead-lettered) or deferred: owed no more by the journal."""
        marks = (
            [(DONE, s) for s in written] + [(DEAD, s) for s in refused] + [(DEFERRED, s) for s in deferred]
        )
        if not marks:
            return
        with self._write() as connection:
            connection.executemany("UPDATE entries SET traces_done = ? WHERE seq = ?", marks)
            connection.executemany(
                "DELETE FROM entries WHERE seq = ? AND rows_done > 0", [(s,) for _, s in marks]
            )

    # ---- counting ------------------------------------------------------------------------

    def pending_counts(self) -> tuple[int, int]:
        """(request records, run operations) the store does not have yet."""
        records, operations = self._read(
            "SELECT COALESCE(SUM(kind = ?), 0), COALESCE(SUM(kind != ?), 0) FROM entries "
            "WHERE rows_done = 0 OR traces_done = 0",
            (REQUEST, REQUEST),
        )[0]
        return records, operations

    def pending_records_by_run(self) -> dict[str, int]:
        rows = self._read(
            "SELECT run_key, COUNT(*) FROM entries WHERE kind = ? AND (rows_done = 0 OR traces_done = 0) "
            "GROUP BY run_key",
            (REQUEST,),
        )
        return dict(rows)

    def is_empty(self) -> bool:
        return not self._read("SELECT 1 FROM entries WHERE rows_done = 0 OR traces_done = 0 LIMIT 1")

    def payload(self, seq: int) -> bytes | None:
        found = self._read("SELECT payload FROM entries WHERE seq = ?", (seq,))
        return found[0][0] if found else None


def store_identity(tracking_uri: str, experiment: str) -> str:
    """Where a journal's entries go: its store and experiment (hashed: no password kept)."""
    return hashlib.sha256(f"{tracking_uri}\x1f{experiment}".encode()).hexdigest()[:16]


def _sqlite(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
