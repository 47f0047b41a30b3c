"""The default response cache: one SQLite file on disk (survives restarts, needs no server).

cache = SQLiteCache(".orchestra/cache.sqlite")
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from orchestra.cache.base import ResponseCache
from orchestra.types import ModelResponse


class SQLiteCache(ResponseCache):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            # a cache can lose its last writes in a power cut; no fsync per insert on the request path
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS responses"
                " (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)"
            )
        self.purge_expired()  # expired entries are dropped once per start, so the file stays bounded

    async def get(self, key: str) -> ModelResponse | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT value, expires_at FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return ModelResponse.model_validate_json(row[0])

    async def set(self, key: str, response: ModelResponse, ttl_s: float) -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO responses (key, value, expires_at) VALUES (?, ?, ?)",
                (key, response.model_dump_json(), time.time() + ttl_s),
            )

    def purge_expired(self) -> int:
        """Delete expired entries; the number deleted."""
        with self._lock:
            return self._connection.execute(
                "DELETE FROM responses WHERE expires_at < ?", (time.time(),)
            ).rowcount

    async def aclose(self) -> None:
        with self._lock:
            self._connection.close()
