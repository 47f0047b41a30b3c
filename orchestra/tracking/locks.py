"""Exclusive `flock` locks on files: held while a process lives, released by the kernel when it dies.

fd = try_lock(Path("x.lock"))           # None if another process (or open file) holds it
with held(Path("mlflow.db.lock")):      # waits (polling) until it is free
    ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestra.errors import TrackingStoreError


def try_lock(path: Path, *, create: bool = True) -> int | None:
    """An exclusive lock on `path` as a file descriptor, or None if it is held (or, without
    `create`, if the file does not exist)."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)


def write_owner(fd: int, note: str = "") -> None:
    """Write who holds the lock into the lock file, for whoever finds it held."""
    owner = f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}{note}\n"
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)


def read_owner(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def held(
    path: Path,
    timeout_s: float = 120.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[int]:
    """Hold the lock on `path` for the block, waiting up to `timeout_s` for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = clock() + timeout_s
    while (fd := try_lock(path)) is None:
        if clock() >= deadline:
            raise TrackingStoreError(f"{read_owner(path)} has held {path} for over {timeout_s:.0f} s")
        sleep(0.05)
    try:
        write_owner(fd)
        yield fd
    finally:
        unlock(fd)
