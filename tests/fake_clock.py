"""A manual clock for the resilience parts: tests count and compare logical times, never wall time."""

from __future__ import annotations

import asyncio


class FakeClock:
    """`clock()` reads the time; `await clock.sleep(s)` records the wait and, unless `frozen`,
    moves the time on by it (then yields once to the event loop, as a real sleep would).

        clock = FakeClock()
        limiter = RateLimiter(requests=10, per_seconds=1, clock=clock, sleep=clock.sleep)
    """

    def __init__(self, now: float = 1000.0, *, frozen: bool = False) -> None:
        self.now = now
        self.frozen = frozen
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if not self.frozen:
            self.now += max(seconds, 0.0)
        await asyncio.sleep(0)
