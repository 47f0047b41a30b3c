"""A logical clock that several processes share (a file), for tests of cluster-wide time limits.

    clock = SharedClock(tmp_path / "clock")       # starts at 0.0; picklable (a Ray task takes it)
    clock.set(10.0)                               # only the test moves it
    await clock.sleep(2.5)                        # returns once the clock reads >= now + 2.5

Nothing in it follows the wall clock: time moves when the test says so, so a loaded machine
cannot change what a test sees.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

_FORMAT = "<d"


class SharedClock:
    """Logical time in seconds, kept in an 8-byte file (see the module docstring)."""

    def __init__(self, path: str | Path, poll_s: float = 0.002) -> None:
        self.path = Path(path)
        self.poll_s = poll_s
        if not self.path.exists():
            self.set(0.0)

    def __call__(self) -> float:
        with open(self.path, "rb") as file:
            return struct.unpack(_FORMAT, file.read(8))[0]

    def set(self, now: float) -> None:
        """Move the clock to `now` (written whole: a reader sees the old time or the new one)."""
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(struct.pack(_FORMAT, now))
        temporary.replace(self.path)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved on by `seconds` (polling the file)."""
        until = self() + seconds
        # Another process moves it: no event of this one can say when, so poll the file.
        while self() < until:  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)
