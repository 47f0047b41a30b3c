"""A child process that writes traces, so trace writing never competes with requests for the GIL.

The parent starts `python -P -m orchestra.tracking.trace_process` with one end of a socket pair:
`-P` keeps the working directory off `sys.path` (a `mlflow.py` there must not be imported;
`PYTHONPATH` still works), and the settings, which may hold a password in the tracking URI,
travel through the socket, never the command line. No re-import of the user's script either
(unlike multiprocessing's spawn).

Each batch of journal entries goes to the child, which writes it with a `TraceSink` and answers
with a `TraceResult`. Entries stay in the journal until the answer marks them: if the child dies,
nothing is lost, and the next batch starts a new child.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

from orchestra.logs import get_logger
from orchestra.redact import SECRETS, RedactingFilter
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.trace_sink import TraceItem, TraceResult, TraceSink
from orchestra.tracking.uris import register_uri_secret

logger = get_logger("orchestra.tracking")

MAX_RESTARTS = 3
"""After this many deaths of the child, traces are written in the parent's thread instead."""
_POLL_S = 0.5


class TraceProcess:
    """The parent's side: same interface as `TraceSink` (write, close)."""

    def __init__(self, settings: TrackingSettings, on_restart: Any = None) -> None:
        self._settings = settings
        self._on_restart = on_restart
        self.restarts = 0
        self._fallback: TraceSink | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._start()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "orchestra.tracking.trace_process", "--fd", str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child_end.close()
        self._connection = Connection(parent_end.detach())
        self._connection.send(("settings", self._settings.model_dump_json()))

    def write(self, batch: list[TraceItem], force: bool = False) -> TraceResult:
        """Have the child write `batch` and wait for its answer (an error result if it died)."""
        if self._fallback is not None:
            return self._fallback.write(batch, force)
        if not self.alive and not self._restart():
            assert self._fallback is not None
            return self._fallback.write(batch, force)
        assert self._connection is not None and self._process is not None
        try:
            self._connection.send(("batch", batch, force))
            while not self._connection.poll(_POLL_S):
                if self._process.poll() is not None:
                    raise EOFError
            _, result = self._connection.recv()
            return result
        except (EOFError, OSError):
            code = self._process.wait()
            logger.error("the trace writer process exited with %s; its batch stays in the journal", code)
            self._drop_connection()
            return TraceResult(error=f"the trace writer process exited with {code}")

    def _restart(self) -> bool:
        """Start a new child; False (and traces written in this process from now on) once it
        has died `MAX_RESTARTS` times."""
        self._drop_connection()
        if self.restarts >= MAX_RESTARTS:
            logger.error("the trace writer process died %d times; writing traces in-process", self.restarts)
            self._fallback = TraceSink(self._settings)
            return False
        self.restarts += 1
        if self._on_restart is not None:
            self._on_restart()
        self._start()
        return True

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        if self._connection is not None and self.alive:
            with contextlib.suppress(OSError):
                self._connection.send(("stop",))
        if self._process is not None:
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._drop_connection()


def _serve(connection: Connection) -> None:
    kind, settings_json = connection.recv()
    if kind != "settings":
        return
    settings = TrackingSettings.model_validate_json(settings_json)
    register_uri_secret(settings.tracking_uri)
    SECRETS.register_environment()
    sink = TraceSink(settings)
    while True:
        try:
            message: Any = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message[0] == "stop":
            return
        result = sink.write(message[1], message[2])
        try:
            connection.send(("done", result))
        except OSError:
            return  # the parent died meanwhile: the batch is still in its journal


def main() -> None:
    parser = argparse.ArgumentParser(description="orchestra's trace writer (started by orchestra)")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: requests and the user's own processes come first
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:  # whatever MLflow or a driver says is masked too
        handler.addFilter(RedactingFilter())
    # Ctrl-C (a Jupyter interrupt, a terminal's process group) is for the parent: it decides
    # when this writer stops, after the traces it has handed over are written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(Connection(args.fd))


if __name__ == "__main__":
    main()
