"""Writing traces: batches of (run id, record) pairs into the store, the rest into the spool.

`TraceSink` writes in the calling thread; `TraceProcess` (trace_process.py) runs a `TraceSink`
in a child process so that trace writing, which is CPU-heavy in SQLAlchemy, does not compete
with requests for the interpreter lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestra.redact import SECRETS
from orchestra.tracking.records import RequestRecord
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.spool import Spool
from orchestra.tracking.store import MlflowStore

RETRY_STORE_AFTER_S = 2.0


class StoreOpener:
    """Opens the store on first use, and again after failures (at most every 2 s)."""

    def __init__(self, settings: TrackingSettings, on_failure: Callable[[str, Exception], None]) -> None:
        self.settings = settings
        self._on_failure = on_failure
        self._store: MlflowStore | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> MlflowStore | None:
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                if self._failed_at and time.monotonic() - self._failed_at < RETRY_STORE_AFTER_S:
                    return None
                try:
                    store = MlflowStore(self.settings)
                    _ = store.experiment_id
                except Exception as err:
                    self._failed_at = time.monotonic()
                    self._on_failure("opening the tracking store", err)
                    return None
                self._store = store
        return self._store


@dataclass
class TraceResult:
    written: int = 0
    spooled: int = 0
    error: str | None = None


class TraceSink:
    """Writes the traces of (run id, record) pairs; a failed group goes to the spool."""

    def __init__(self, settings: TrackingSettings, spool: Spool) -> None:
        self.spool = spool
        self._last_error: str | None = None
        self.store = StoreOpener(settings, self._remember)

    def _remember(self, what: str, err: Exception) -> None:
        self._last_error = SECRETS.redact(f"{what}: {type(err).__name__}: {err}")

    def write(self, pairs: list[tuple[str, RequestRecord]]) -> TraceResult:
        result = TraceResult()
        by_run: dict[str, list[RequestRecord]] = {}
        for run_id, record in pairs:
            by_run.setdefault(run_id, []).append(record)
        for run_id, records in by_run.items():
            store = self.store.get()
            try:
                if store is None:
                    raise ConnectionError("tracking store unavailable")
                result.written += store.write_traces(run_id, records)
            except Exception as err:
                self._remember("writing traces", err)
                if self.spool.append_requests(records[0].run_key, records, ["traces"]):
                    result.spooled += 1
        result.error, self._last_error = self._last_error, None
        return result

    def barrier(self) -> None:
        """Writes are synchronous: nothing to wait for."""

    def close(self) -> None:
        """Nothing to release."""
