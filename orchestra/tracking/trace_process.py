"""A child process that writes traces, so trace writing never competes with requests for the GIL.

The parent starts `python -m orchestra.tracking.trace_process` with one end of a socket pair
(no re-import of the user's script, unlike multiprocessing's spawn) and sends it batches of
(run id, record) pairs. The child writes each batch with a `TraceSink` (spooling what the store
refuses) and confirms it. The parent keeps every batch until it is confirmed: if the child dies,
the unconfirmed batches are spooled by the parent, so nothing is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from orchestra.logs import get_logger
from orchestra.tracking.records import RequestRecord
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.spool import Spool
from orchestra.tracking.trace_sink import TraceResult, TraceSink

logger = get_logger("orchestra.tracking")

MAX_IN_FLIGHT = 16
"""Batches sent but not yet confirmed; more makes the sender wait (back-pressure)."""


class TraceProcess:
    """The parent's side: same interface as `TraceSink` (write, barrier, close)."""

    def __init__(self, settings: TrackingSettings, spool: Spool, on_result) -> None:
        self.spool = spool
        self._on_result = on_result
        parent_end, child_end = socket.socketpair()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestra.tracking.trace_process",
                "--fd",
                str(child_end.fileno()),
                "--settings",
                settings.model_dump_json(),
            ],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child_end.close()
        self._connection = Connection(parent_end.detach())
        self._ids = itertools.count()
        self._in_flight: dict[int, list[tuple[str, RequestRecord]]] = {}
        self._barriers: dict[int, threading.Event] = {}
        self._condition = threading.Condition()
        self._alive = True
        self._reader = threading.Thread(target=self._read, name="orchestra-traces-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._alive

    def write(self, pairs: list[tuple[str, RequestRecord]]) -> TraceResult:
        """Send a batch; results arrive later through `on_result`. Spools if the child is gone."""
        if not pairs:
            return TraceResult()
        with self._condition:
            while self._alive and len(self._in_flight) >= MAX_IN_FLIGHT:
                self._condition.wait(0.5)
            batch_id = next(self._ids)
            self._in_flight[batch_id] = pairs
            if self._alive:
                try:
                    self._connection.send(("batch", batch_id, pairs))
                    return TraceResult()
                except OSError:
                    self._alive = False
        return self._spool_orphans()

    def barrier(self) -> None:
        """Wait until the child has confirmed every batch sent before this call."""
        event = threading.Event()
        with self._condition:
            if not self._alive:
                return
            token = next(self._ids)
            self._barriers[token] = event
            try:
                self._connection.send(("barrier", token))
            except OSError:
                self._alive = False
                return
        while not event.wait(0.5):
            if not self._alive:
                return

    def close(self) -> None:
        with self._condition:
            if self._alive:
                try:
                    self._connection.send(("stop",))
                except OSError:
                    self._alive = False
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._reader.join(5)
        self._spool_orphans()

    def _read(self) -> None:
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "done":
                _, batch_id, result = message
                with self._condition:
                    self._in_flight.pop(batch_id, None)
                    self._condition.notify_all()
                self._on_result(result)
            elif kind == "barrier":
                with self._condition:
                    event = self._barriers.pop(message[1], None)
                if event is not None:
                    event.set()
            elif kind == "stopped":
                break
        with self._condition:
            self._alive = False
            self._condition.notify_all()
            for event in self._barriers.values():
                event.set()
            self._barriers.clear()
        if self._process.poll() not in (None, 0):
            logger.error("the trace writer process exited with %s", self._process.returncode)
        self._on_result(self._spool_orphans())

    def _spool_orphans(self) -> TraceResult:
        """Spool every batch the child never confirmed (it died or could not be reached)."""
        with self._condition:
            orphans = list(self._in_flight.values())
            self._in_flight.clear()
        result = TraceResult()
        for pairs in orphans:
            records = [record for _, record in pairs]
            if self.spool.append_requests(records[0].run_key, records, ["traces"]):
                result.spooled += 1
        return result


def _serve(connection: Connection, settings: TrackingSettings) -> None:
    sink = TraceSink(settings, Spool(settings.spool_dir))
    while True:
        try:
            message: Any = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        kind = message[0]
        if kind == "batch":
            _, batch_id, pairs = message
            connection.send(("done", batch_id, sink.write(pairs)))
        elif kind == "barrier":
            connection.send(("barrier", message[1]))
        elif kind == "stop":
            connection.send(("stopped",))
            return


def main() -> None:
    parser = argparse.ArgumentParser(description="orchestra's trace writer (started by orchestra)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--settings", required=True)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: requests and the user's own processes come first
    logging.basicConfig(level=logging.WARNING)
    # Ctrl-C (a Jupyter interrupt, a terminal's process group) is for the parent: it decides
    # when this writer stops, after the traces it has handed over are written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(Connection(args.fd), TrackingSettings.model_validate_json(args.settings))


if __name__ == "__main__":
    main()
