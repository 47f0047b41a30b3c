"""Writing traces: batches of journal entries into the store, a refused record isolated.

`TraceSink` writes in the calling thread; `TraceProcess` (trace_process.py) runs a `TraceSink`
in a child process so that trace writing, which is CPU-heavy in SQLAlchemy, does not compete
with requests for the interpreter lock. Both answer a batch with a `TraceResult`: which entries
are written, which the store refused (and why), and the outage that stopped the rest, if any.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestra.engine.records import RequestRecord
from orchestra.redact import SECRETS
from orchestra.tracking.codec import decode_record
from orchestra.tracking.isolate import describe, isolate
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore, forget_failed_server_checks
from orchestra.tracking.uris import mask_uris_in

RETRY_STORE_AFTER_S = 2.0

TraceItem = tuple[int, str, bytes]
"""(journal seq, run id, encoded record)."""


class StoreOpener:
    """Opens the store on first use, and again after failures (at most every 2 s)."""

    def __init__(self, settings: TrackingSettings, on_failure: Callable[[str, Exception], None]) -> None:
        self.settings = settings
        self._on_failure = on_failure
        self._store: MlflowStore | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()

    def get(self, *, force: bool = False) -> MlflowStore | None:
        """The store; None while it cannot be opened. `force` (a flush) tries at once, else a
        failed open is retried at most every 2 s."""
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                recently = self._failed_at and time.monotonic() - self._failed_at < RETRY_STORE_AFTER_S
                if recently and not force:
                    return None
                try:
                    if self.settings.tracking_uri.startswith(("http://", "https://")):
                        forget_failed_server_checks()
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
    """What became of a batch: `written` and `refused` (seq, reason) entries; `error` names the
    outage that left the others unwritten; `cpu_s` is the CPU the writing thread spent on it
    (decoding, spans, MLflow; not opening the store), which the trace budget is charged."""

    written: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    error: str | None = None
    cpu_s: float = 0.0
    warmup: bool = False
    """The writer's first batch since it started: MLflow's lazy imports and first queries,
    paid once per process (not charged to the trace budget)."""


class TraceSink:
    """Writes the traces of a batch; a batch the store refuses is split until the refused
    records stand alone (see `isolate`)."""

    def __init__(self, settings: TrackingSettings) -> None:
        self._last_error: str | None = None
        self._warm = False
        self.store = StoreOpener(settings, self._remember)

    def _remember(self, what: str, err: Exception) -> None:
        self._last_error = _safe(f"{what}: {describe(err)}")

    def write(self, batch: list[TraceItem], force: bool = False) -> TraceResult:
        """Write `batch`; `force` (a flush) opens a store that failed recently at once."""
        result = TraceResult()
        store = self.store.get(force=force)
        if store is None:
            result.error = self._last_error or "the tracking store is unavailable"
            return result
        started = time.thread_time()  # this thread's CPU: in the parent, other threads run too
        try:
            self._write(store, batch, result)
        finally:
            result.cpu_s = time.thread_time() - started
        result.warmup = not self._warm
        self._warm = self._warm or bool(result.written)
        return result

    def _write(self, store: MlflowStore, batch: list[TraceItem], result: TraceResult) -> None:
        by_run: dict[str, list[tuple[int, RequestRecord]]] = {}
        for seq, run_id, payload in batch:
            try:
                by_run.setdefault(run_id, []).append((seq, decode_record(payload)))
            except Exception as err:  # an entry no version of orchestra could have written
                result.refused.append((seq, _safe(describe(err))))
        for run_id, items in by_run.items():

            def write(chunk: list[tuple[int, RequestRecord]], run_id: str = run_id) -> None:
                store.write_traces(run_id, [record for _, record in chunk])

            outcome = isolate(items, write)
            result.written += [seq for seq, _ in outcome.written]
            result.refused += [(seq, _safe(describe(err))) for (seq, _), err in outcome.refused]
            if outcome.outage is not None:
                result.error = _safe(f"writing traces: {describe(outcome.outage)}")
                break

    def close(self) -> None:
        """Nothing to release."""


def _safe(text: str) -> str:
    return SECRETS.redact(mask_uris_in(text))
