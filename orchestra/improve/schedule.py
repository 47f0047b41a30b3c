"""The improvement cycle on a schedule, in a long-lived process (`orchestra improve --schedule`).

    schedule = Schedule(cycle, interval_s=24 * 3600)
    await schedule.run()                 # forever, or `max_cycles` times

A cycle that fails is logged and the schedule goes on: a broken night must not stop the next.
The clock and the sleep are injected, so tests run a year of cycles without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestra.logs import get_logger

logger = get_logger("orchestra.improve")


class Schedule:
    """Run `cycle` every `interval_s` seconds (measured from each cycle's start)."""

    def __init__(
        self,
        cycle: Callable[[], Awaitable[Any]],
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_cycles: int | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the interval must be positive")
        self.cycle = cycle
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep
        self.max_cycles = max_cycles
        self.runs = 0
        self.failures = 0

    async def run(self) -> int:
        """Run cycles until `max_cycles` (forever when None); returns how many ran."""
        next_start = self.clock()
        while self.max_cycles is None or self.runs < self.max_cycles:
            wait = next_start - self.clock()
            if wait > 0:
                await self.sleep(wait)
            started = self.clock()
            next_start = started + self.interval_s
            self.runs += 1
            try:
                await self.cycle()
            except Exception as err:  # one failed cycle must not end the schedule
                self.failures += 1
                logger.error("improvement cycle %d failed: %s: %s", self.runs, type(err).__name__, err)
            if self.clock() > next_start:
                logger.warning(
                    "improvement cycle %d took longer than the interval (%.0f s); the next starts now",
                    self.runs,
                    self.interval_s,
                )
                next_start = self.clock()
        return self.runs
