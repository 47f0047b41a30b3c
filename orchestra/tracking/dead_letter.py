"""Records the store refused, kept in a JSON-lines file with the reason, never dropped.

    letters = DeadLetters(Path(".orchestra/spool/dead-letter"), journal_id="...")
    letters.add("traces", seq, "request", run_key, json.loads(payload), reason="IntegrityError: ...")

Each line holds the sink that refused it (rows or traces), the reason and the journal entry
(already sanitised: no secrets). The file is `<spool_dir>/dead-letter/<journal id>.jsonl`.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestra.logs import get_logger
from orchestra.redact import SECRETS

logger = get_logger("orchestra.tracking")


class DeadLetters:
    """The dead-letter file of one journal; appends are fsynced (they are the only copy)."""

    def __init__(self, folder: Path, journal_id: str) -> None:
        self.path = folder / f"{journal_id}.jsonl"
        self._lock = threading.Lock()

    def add(self, sink: str, seq: int | None, kind: str, run_key: str, entry: Any, reason: str) -> None:
        """Keep one refused entry; raises OSError if it cannot be kept (it stays in the journal)."""
        line = {
            "time": datetime.now(UTC).isoformat(),
            "sink": sink,
            "reason": SECRETS.redact(reason),
            "seq": seq,
            "kind": kind,
            "run_key": run_key,
            "entry": entry,
        }
        data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8", "replace")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        logger.error(
            "the tracking store refused a %s (%s of run %s); kept in %s: %s",
            "request" if kind == "request" else f"{kind} operation",
            sink,
            run_key,
            self.path,
            line["reason"],
        )
