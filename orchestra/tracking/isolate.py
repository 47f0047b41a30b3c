"""Tell a store that is down from a record it refuses, and find that record in a batch.

A write can fail because the store is unavailable (down, locked, out of space: try again later,
nothing is wrong with the data) or because the store refuses the data (a constraint, a value it
cannot encode: trying again will fail again). Errors are told apart by their types and codes,
walking the chain of causes, never by their messages. Anything unrecognised counts as an outage:
retrying a bad record costs time, dead-lettering a good one would lose it from the store.

    outcome = isolate(records, write_batch)
    outcome.written, outcome.refused, outcome.unwritten, outcome.outage
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")

_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_REFUSING_TYPES = (sqlite3.IntegrityError, sqlite3.DataError, UnicodeError, ValueError, TypeError)
_REFUSING_MLFLOW_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "MALFORMED_REQUEST"}


def causes(err: BaseException) -> Iterator[BaseException]:
    """`err`, then what caused it (`__cause__`, `__context__`, a driver's `orig`), without loops."""
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (current.__cause__, current.__context__, getattr(current, "orig", None)):
            if isinstance(inner, BaseException):
                pending.append(inner)


def is_disk_full(err: BaseException) -> bool:
    """The disk (or a file-size limit) has no room: an OS error, or SQLite's SQLITE_FULL."""
    for cause in causes(err):
        if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS:
            return True
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(cause, sqlite3.Error) and code == sqlite3.SQLITE_FULL:
            return True
    return False


def is_refusal(err: BaseException) -> bool:
    """True when the store refused this data (writing it again will fail again)."""
    if is_disk_full(err):
        return False
    for cause in causes(err):
        if isinstance(cause, OSError | sqlite3.OperationalError | ConnectionError | TimeoutError):
            return False
        if _is_sqlalchemy(cause, ("OperationalError", "InterfaceError", "TimeoutError")):
            return False
    for cause in causes(err):
        if isinstance(cause, _REFUSING_TYPES):
            return True
        if _is_sqlalchemy(cause, ("IntegrityError", "DataError")):
            return True
        if getattr(cause, "error_code", None) in _REFUSING_MLFLOW_CODES:
            return True
    return False


def _is_sqlalchemy(err: BaseException, names: tuple[str, ...]) -> bool:
    kind = type(err)
    return kind.__module__.startswith("sqlalchemy") and any(
        base.__name__ in names for base in kind.__mro__ if base.__module__.startswith("sqlalchemy")
    )


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


@dataclass
class Isolated(Generic[Item]):
    """What `isolate` did with each item."""

    written: list[Item] = field(default_factory=list)
    refused: list[tuple[Item, BaseException]] = field(default_factory=list)
    unwritten: list[Item] = field(default_factory=list)
    outage: BaseException | None = None


def isolate(
    items: Sequence[Item],
    write: Callable[[list[Item]], None],
    refused: Callable[[BaseException], bool] = is_refusal,
) -> Isolated[Item]:
    """Write `items` in one call; if the store refuses the batch, split it in halves (and so on)
    until each refused item stands alone, writing the rest. An outage stops everything: what was
    not written yet is `unwritten`, to be tried again later."""
    outcome: Isolated[Item] = Isolated()
    stack = [list(items)] if items else []
    while stack:
        chunk = stack.pop()
        if outcome.outage is not None:
            outcome.unwritten.extend(chunk)
            continue
        try:
            write(chunk)
        except Exception as err:
            if not refused(err):
                outcome.outage = err
                outcome.unwritten.extend(chunk)
            elif len(chunk) == 1:
                outcome.refused.append((chunk[0], err))
            else:
                middle = len(chunk) // 2
                stack.extend([chunk[middle:], chunk[:middle]])  # the first half is tried first
            continue
        outcome.written.extend(chunk)
    return outcome
