"""A token bucket of trace-writing CPU: which requests get their MLflow trace while they are logged.

    budget = TraceBudget(per_request_ms=0.2, per_second_ms=20, burst_ms=150)
    budget.earn(requests=50)          # each request logged, and the time passed, add CPU
    budget.affordable(250)            # how many of 250 pending traces to write now (the rest are deferred)
    budget.spend(cpu_s=0.085, traces=24)  # the writer's measured CPU for the batch it wrote

The bucket holds milliseconds of CPU. It fills by `per_request_ms` per request logged and by
`per_second_ms` per second of the injected clock, up to `burst_ms`; writing traces empties it by
the CPU the writer measured for them (its own `thread_time`, reported with each batch), so the
budget follows what traces really cost on this machine and store, not a guess (a writer's first
batch, which pays MLflow's lazy imports once per process, is not charged).

A batch costs a fixed part (MLflow's sessions, the link to the run: ~7 ms on SQLite) plus a part
per trace (~3.3 ms); both are fitted to the last `FIT_WINDOW` measured batches (a straight line
over batch size, `numpy.polyfit`; `PRIOR_FIXED_MS` and `PRIOR_PER_TRACE_MS` until two sizes are
measured), so the model follows a store that gets slower as it grows. A pass writes every
pending trace when the bucket affords them all (a person in a notebook), else saves up until it
affords a batch of `MIN_BATCH` (a sweep: the fixed part is paid for many traces at once) and
defers the rest. A full bucket writes what it affords, at least one trace (saving longer buys
no bigger batch), so the bucket may go into debt, repaid by what it earns next.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

import numpy as np

MIN_BATCH = 20
"""While the bucket cannot afford every pending trace, the fewest it writes in one batch."""
PRIOR_FIXED_MS = 5.0
PRIOR_PER_TRACE_MS = 3.0
FIT_WINDOW = 64
"""The batches (size, measured CPU) the cost model is fitted to: the most recent ones."""


class TraceBudget:
    """See the module docstring; not thread-safe (the traces thread alone uses it)."""

    def __init__(
        self,
        per_request_ms: float,
        per_second_ms: float,
        burst_ms: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_request_ms = per_request_ms
        self.per_second_ms = per_second_ms
        self.burst_ms = burst_ms
        self._clock = clock
        self._last = clock()
        self.level_ms = burst_ms
        """CPU that may be spent now (negative: a debt that what is earned next repays)."""
        self._batches: deque[tuple[int, float]] = deque(maxlen=FIT_WINDOW)  # (traces, CPU ms)
        self._fitted = (PRIOR_FIXED_MS, PRIOR_PER_TRACE_MS)
        """(fixed, per trace) ms: refitted when a batch is measured, read by every pass."""

    def batch_cost_ms(self, traces: int) -> float:
        """The CPU a batch of `traces` is expected to cost (fitted to the batches measured)."""
        fixed, per_trace = self._fitted
        return fixed + per_trace * traces

    def _fit(self) -> tuple[float, float]:
        sizes = np.array([traces for traces, _ in self._batches], dtype=float)
        costs = np.array([ms for _, ms in self._batches])
        if np.ptp(sizes) == 0:  # one batch size so far: keep the prior fixed part
            return PRIOR_FIXED_MS, max(float((costs.sum() - PRIOR_FIXED_MS * len(costs)) / sizes.sum()), 0.01)
        per_trace = max(float(np.polyfit(sizes, costs, 1)[0]), 0.01)
        fixed = max(float(np.mean(costs - per_trace * sizes)), 0.0)
        return fixed, per_trace

    def earn(self, requests: int = 0) -> None:
        """Add what `requests` newly logged and the time since the last call earn (up to the burst)."""
        now = self._clock()
        elapsed = max(now - self._last, 0.0)
        self._last = now
        earned = requests * self.per_request_ms + elapsed * self.per_second_ms
        self.level_ms = min(self.level_ms + earned, self.burst_ms)

    def affordable(self, pending: int) -> int:
        """How many of `pending` traces to write now (0: defer them all and save up)."""
        if pending <= 0 or self.level_ms <= 0:
            return 0
        fixed, per_trace = self._fitted
        can = max(math.floor((self.level_ms - fixed) / per_trace), 0)
        if can >= pending:
            return pending
        if self.level_ms >= self.burst_ms:  # full: saving longer buys no bigger batch
            return max(can, 1)
        return can if can >= MIN_BATCH else 0

    def spend(self, cpu_s: float, traces: int, warmup: bool = False) -> None:
        """Take the CPU the writer measured for a batch of `traces` out of the bucket; a writer's
        `warmup` batch (its first: imports and first queries, once per process) is not charged."""
        if warmup:
            return
        used_ms = max(cpu_s, 0.0) * 1000
        self.level_ms -= used_ms
        if traces > 0:
            self._batches.append((traces, used_ms))
            self._fitted = self._fit()
