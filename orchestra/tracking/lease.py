"""Leases: one process at a time works on a named piece of work (a sweep, one of its arms).

Beside a SQLite store a lease is a lock file (`<store>.leases/<name>.lock`, `flock`): the kernel
releases it when its process dies, however it dies. On any other store (a tracking server,
PostgreSQL) it is an experiment tag `orchestra.lease.<name>` holding the owner and a heartbeat
that a thread renews; a lease whose heartbeat is older than `stale_after_s` is free to take.
Tags have no compare-and-set, so a taker writes its claim, waits `settle_s` and reads it back:
of two processes claiming at once, the last writer keeps it and the other sees it lost (on
PostgreSQL the second of two first claims may even fail to write: it has lost, too).

    lease = lease_for(store, "sweep-abc123")
    if lease.acquire(wait=False):
        try: ...
        finally: lease.release()
    else:
        print(lease.holder)          # who has it, e.g. "host pid 4242 since 2025-01-01 10:00:00"
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from orchestra.logs import get_logger
from orchestra.tracking.locks import read_owner, try_lock, unlock, write_owner
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tags import LEASE_TAG_PREFIX

logger = get_logger("orchestra.tracking")

_POLL_S = 0.5


class Lease(Protocol):
    holder: str
    """Who holds the lease, after an `acquire` that failed."""

    def acquire(self, *, wait: bool = False) -> bool: ...

    def release(self) -> None: ...


def lease_for(store: MlflowStore, name: str) -> Lease:
    """A file lease beside a SQLite store, else an experiment-tag lease (see the module docstring)."""
    database = store.settings.sqlite_path
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if database is not None:
        return FileLease(database.with_name(f"{database.name}.leases") / f"{safe}.lock")
    return TagLease(store, safe)


class FileLease:
    """A lease held with `flock` on a lock file."""

    def __init__(self, path: Path, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.holder = ""
        self._sleep = sleep
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while (fd := try_lock(self.path)) is None:
            self.holder = read_owner(self.path)
            if not wait:
                return False
            self._sleep(_POLL_S)
        write_owner(fd)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            unlock(self._fd)
            self._fd = None


class TagLease:
    """A lease held as an experiment tag with an owner and a heartbeat."""

    def __init__(
        self,
        store: MlflowStore,
        name: str,
        *,
        heartbeat_s: float = 10.0,
        stale_after_s: float = 60.0,
        settle_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.key = f"{LEASE_TAG_PREFIX}{name}"
        self.owner = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self.holder = ""
        self._heartbeat_s = heartbeat_s
        self._stale_after_s = stale_after_s
        self._settle_s = settle_s
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        while True:
            current = self._read()
            if current is None or current.get("owner") == self.owner or self._stale(current):
                self._claim()
                self._sleep(self._settle_s)
                current = self._read()
                if current is not None and current.get("owner") == self.owner:
                    self._start_heartbeat()
                    return True
            self.holder = _describe(current)
            if not wait:
                return False
            self._sleep(_POLL_S)

    def release(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
            self._beating = None
        current = self._read()
        if current is not None and current.get("owner") == self.owner:
            self.store.client.set_experiment_tag(self.store.experiment_id, self.key, "")

    def _stale(self, current: dict[str, Any]) -> bool:
        return self._clock() - float(current.get("heartbeat", 0)) > self._stale_after_s

    def _read(self) -> dict[str, Any] | None:
        tags = self.store.client.get_experiment(self.store.experiment_id).tags
        try:
            value = json.loads(tags.get(self.key) or "null")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _claim(self) -> None:
        """Write our claim. On PostgreSQL two first claims at the same instant collide on the
        tag's key and one write fails: that claimant lost the race, which reading back shows."""
        try:
            self._write()
        except Exception as err:  # a collision, or an outage: the read that follows tells which
            logger.info("claiming lease %s failed (%s); reading back who holds it", self.key, err)

    def _write(self) -> None:
        value = json.dumps({"owner": self.owner, "heartbeat": self._clock()})
        self.store.client.set_experiment_tag(self.store.experiment_id, self.key, value)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beating = threading.Thread(target=self._beat, name="orchestra-lease", daemon=True)
        self._beating.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                current = self._read()
                if current is None or current.get("owner") != self.owner:
                    logger.error("lease %s was taken over by %s", self.key, _describe(current))
                    return
                self._write()
            except Exception as err:  # the store is down: the next beat tries again
                logger.warning("could not renew lease %s: %s", self.key, err)


def _describe(current: dict[str, Any] | None) -> str:
    if current is None:
        return "nobody"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(current.get("heartbeat", 0))))
    return f"{current.get('owner', 'another process')} (heartbeat {since})"
