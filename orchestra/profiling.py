"""`PerformanceProfiler`: elapsed time, peak memory and provider calls made inside a block.

with PerformanceProfiler() as profiler:
    result = await orch.process_request(...)
profiler.elapsed_time, profiler.memory_usage, profiler.api_calls   # ms, MB, attempts
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

_COUNTERS: ContextVar[tuple[list[int], ...]] = ContextVar("orchestra_api_call_counters", default=())


def count_api_call() -> None:
    """Called for every provider attempt; every profiler around the current context counts it."""
    for counter in _COUNTERS.get():
        counter[0] += 1


class PerformanceProfiler:
    """Measures a block: `elapsed_time` (ms), `memory_usage` (peak MB of Python allocations) and
    `api_calls` (provider attempts made inside it, retries included)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.elapsed_time = 0.0  # ms
        self.memory_usage = 0.0  # MB, peak of Python allocations during the block
        self.api_calls = 0
        self._counter = [0]
        self._token: Any = None
        self._started = 0.0
        self._was_tracing = False

    def __enter__(self) -> PerformanceProfiler:
        self._was_tracing = tracemalloc.is_tracing()
        if not self._was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self._token = _COUNTERS.set((*_COUNTERS.get(), self._counter))
        self._started = self._clock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed_time = (self._clock() - self._started) * 1000.0
        _, peak = tracemalloc.get_traced_memory()
        self.memory_usage = peak / 1e6
        if not self._was_tracing:
            tracemalloc.stop()
        _COUNTERS.reset(self._token)
        self.api_calls = self._counter[0]

    async def __aenter__(self) -> PerformanceProfiler:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__(*exc_info)

    def __repr__(self) -> str:
        return (
            f"PerformanceProfiler(elapsed_time={self.elapsed_time:.2f} ms, "
            f"memory_usage={self.memory_usage:.2f} MB, api_calls={self.api_calls})"
        )
