"""Files spooled by orchestra before the journal existed, moved into the journal at start.

The old spool was a folder of JSON-lines files (`<spool_dir>/*.jsonl`), each a list of
operations: create_run, requests (records owed to rows and/or traces), end_run, metrics. A file
is claimed by renaming it (`.claimed-<pid>`; files of a dead claimer are claimable again),
appended to this process's journal in one transaction, then deleted.

    import_legacy_spool(Path(".orchestra/spool"), journal)     # operations moved
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orchestra.logs import get_logger
from orchestra.tracking.codec import decode_record, encode_operation, encode_record
from orchestra.tracking.journal import CREATE_RUN, DONE, END_RUN, METRICS, PENDING, REQUEST, Entry, Journal

logger = get_logger("orchestra.tracking")

_CLAIM = ".claimed-"


def import_legacy_spool(folder: Path, journal: Journal) -> int:
    """Move every old spool file in `folder` into `journal`; returns the operations moved."""
    if not folder.is_dir():
        return 0
    moved = 0
    for path in _claim(folder):
        try:
            entries = [entry for line in _lines(path) for entry in _entries(json.loads(line))]
            journal.append(entries)
        except Exception as err:
            logger.error("could not move old spool file %s into the journal (%s); left in place", path, err)
            continue
        journal.note_unknown_runs({entry.run_key for entry in entries if entry.kind != CREATE_RUN})
        path.unlink()
        moved += len(entries)
    if moved:
        logger.info("moved %d operation(s) from the old spool in %s into the journal", moved, folder)
    return moved


def _claim(folder: Path) -> list[Path]:
    candidates = [*folder.glob("*.jsonl"), *(p for p in folder.glob(f"*{_CLAIM}*") if _claimer_is_dead(p))]
    claimed = []
    for path in sorted(candidates, key=lambda p: p.name):
        target = folder / f"{path.name.split(_CLAIM)[0]}{_CLAIM}{os.getpid()}"
        try:
            path.rename(target)
        except OSError:
            continue  # another process claimed it first
        claimed.append(target)
    return claimed


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _entries(operation: dict[str, Any]) -> list[Entry]:
    kind, run_key = operation["op"], operation["run_key"]
    if kind == "requests":
        sinks = operation["sinks"]
        rows = PENDING if "rows" in sinks else DONE
        traces = PENDING if "traces" in sinks else DONE
        records = [decode_record(record) for record in operation["records"]]
        return [Entry(REQUEST, run_key, encode_record(record), rows, traces) for record in records]
    data = {key: value for key, value in operation.items() if key not in ("op", "run_key")}
    if kind == "end_run":
        data.setdefault("end_ms", None)
    known = {"create_run": CREATE_RUN, "end_run": END_RUN, "metrics": METRICS}
    return [Entry(known[kind], run_key, encode_operation(data), PENDING, DONE)]


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
