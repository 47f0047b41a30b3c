"""A folder of JSON-lines files holding tracking work the store could not take yet.

Each file is a list of operations (create_run, requests, end_run). A process claims a file by
renaming it, so two processes sharing the folder never replay the same file twice; files
claimed by a process that died are claimable again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.logs import get_logger

if TYPE_CHECKING:
    from orchestra.tracking.records import RequestRecord

logger = get_logger("orchestra.tracking")

_SUFFIX = ".jsonl"
_CLAIM = ".claimed-"


class Spool:
    """Append-only files of pending operations, replayed in the order they were written."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def append(self, operations: list[dict[str, Any]]) -> Path:
        """Write `operations` to a new file (atomically: write, then rename into place)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
        temporary = self.folder / f".{name}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            for operation in operations:
                handle.write(json.dumps(operation, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / name
        temporary.rename(final)
        return final

    def try_append(self, operations: list[dict[str, Any]]) -> bool:
        """`append`, but a failing disk is logged (nothing left to do but say so loudly): False."""
        try:
            self.append(operations)
        except OSError as err:
            logger.error("could not spool %d tracking operation(s): %s", len(operations), err)
            return False
        return True

    def append_requests(self, run_key: str, records: Iterable[RequestRecord], sinks: list[str]) -> bool:
        """Spool one `requests` operation (the records still owed to `sinks`); False if the disk failed."""
        operation = {
            "op": "requests",
            "run_key": run_key,
            "sinks": sinks,
            "records": [record.to_json() for record in records],
        }
        return self.try_append([operation])

    def pending(self) -> list[Path]:
        """Unclaimed files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{_SUFFIX}"))

    def claim(self) -> list[Path]:
        """Take the pending files (and those of dead claimers) for this process, oldest first."""
        if not self.folder.is_dir():
            return []
        claimed = []
        candidates = self.pending() + [p for p in self.folder.glob(f"*{_CLAIM}*") if _claimer_is_dead(p)]
        for path in sorted(candidates, key=lambda p: p.name):
            base = path.name.split(_CLAIM)[0]
            target = self.folder / f"{base}{_CLAIM}{os.getpid()}"
            try:
                path.rename(target)
            except OSError:
                continue  # another process claimed it first
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        operations = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    operations.append(json.loads(line))
        return operations

    @staticmethod
    def release(path: Path) -> None:
        path.unlink(missing_ok=True)

    def size(self) -> int:
        """Operations waiting in unclaimed files."""
        return sum(len(self.read(path)) for path in self.pending())


def _claimer_is_dead(path: Path) -> bool:
    try:
        pid = int(path.name.rsplit(_CLAIM, 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
