"""A token bucket of trace-writing CPU: which requests get their MLflow trace while they are logged.

    budget = TraceBudget(per_request_ms=0.2, per_second_ms=20, burst_ms=100)
    budget.earn(requests=50)          # each request logged, and the time passed, add CPU
    budget.affordable(250)            # how many of 250 pending traces to write now (the rest are deferred)
    budget.spend(cpu_s=0.021, traces=7)  # the writer's measured CPU for the traces it wrote

The bucket holds milliseconds of CPU. It fills by `per_request_ms` per request logged and by
`per_second_ms` per second of the injected clock, up to `burst_ms`; writing traces empties it by
the CPU the writer measured for them (its own `thread_time`, reported with each batch), so the
budget follows what traces really cost on this machine and store, not a guess (a writer's first
batch, which pays MLflow's lazy imports once per process, is not charged). While the bucket
holds anything, traces are written (it may go into debt by one batch, repaid by what it earns
next); a pass over the journal defers what it cannot afford. The estimate that sizes a batch is
the measured cost of the traces written so far (`prior_ms_per_trace` until the first is).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TraceBudget:
    """See the module docstring; not thread-safe (the traces thread alone uses it)."""

    def __init__(
        self,
        per_request_ms: float,
        per_second_ms: float,
        burst_ms: float,
        clock: Callable[[], float] = time.monotonic,
        prior_ms_per_trace: float = 3.0,
    ) -> None:
        self.per_request_ms = per_request_ms
        self.per_second_ms = per_second_ms
        self.burst_ms = burst_ms
        self._clock = clock
        self._last = clock()
        self.level_ms = burst_ms
        """CPU that may be spent now (negative: a debt that what is earned next repays)."""
        self.spent_ms = 0.0
        self.traces_measured = 0
        self._prior = prior_ms_per_trace

    @property
    def ms_per_trace(self) -> float:
        """The measured CPU per trace written so far (the prior before any)."""
        if self.traces_measured == 0:
            return self._prior
        return self.spent_ms / self.traces_measured

    def earn(self, requests: int = 0) -> None:
        """Add what `requests` newly logged and the time since the last call earn (up to the burst)."""
        now = self._clock()
        elapsed = max(now - self._last, 0.0)
        self._last = now
        earned = requests * self.per_request_ms + elapsed * self.per_second_ms
        self.level_ms = min(self.level_ms + earned, self.burst_ms)

    def affordable(self, pending: int) -> int:
        """How many of `pending` traces to write now: none while the bucket is empty or in debt."""
        if pending <= 0 or self.level_ms <= 0:
            return 0
        return min(pending, max(1, math.ceil(self.level_ms / max(self.ms_per_trace, 1e-6))))

    def spend(self, cpu_s: float, traces: int, warmup: bool = False) -> None:
        """Take the CPU the writer measured for `traces` traces out of the bucket; a writer's
        `warmup` batch (its first: imports and first queries, once per process) is not charged."""
        if warmup:
            return
        used_ms = max(cpu_s, 0.0) * 1000
        self.level_ms -= used_ms
        if traces > 0:
            self.spent_ms += used_ms
            self.traces_measured += traces
