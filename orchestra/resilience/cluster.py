"""Rate limits and budgets shared by every worker of a Ray cluster, with the local interfaces.

`ClusterLimits` is the `Limits` a worker uses (`using_limits`): its limiters and budgets are
local objects with the same interface as `RateLimiter` and `Budget`, backed by one
`LimitsLedger` actor for the whole sweep. They ask the actor in batches, so a call's hot path
makes no remote call: a limiter holds a few permits ahead, a budget an allowance.

- Requests per window hold across the cluster; a permit not used within `slack_s` of its time
  is given back and another one taken.
- Tokens per window: each call's estimate is reserved at the actor (one remote call per call
  on endpoints with a token limit; the estimate, input plus `max_tokens`, is never corrected
  down, so the limit is only ever under-used).
- `max_concurrent` is split evenly between the workers.
- A budget is never overspent by more than the calls in flight cost beyond their worst case:
  allowances never add up to more than the limit. An idle worker's allowance (at most
  `chunk_share` of the limit) is given back when its shard ends.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orchestra.errors import BudgetExceeded, ConfigError
from orchestra.resilience.budget import Budget
from orchestra.resilience.limiter import RateLimiter


@dataclass
class ClusterLimitsSpec:
    """What a worker needs to reach the sweep's ledger (picklable: it travels with each shard)."""

    ledger: Any
    """The `LimitsLedger` actor's handle."""
    workers: int
    batch: int = 16
    chunk_share: float = 0.05
    slack_s: float = 1.0
    """How late a permit may still be used; the ledger counts windows this much longer."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] | None = None
    estimate_offset: bool = True
    """Estimate the ledger's clock minus a worker's from each grant's round trip (machines'
    clocks differ a little). Off when every process reads one shared clock: a logical clock that
    moves during a round trip would otherwise be taken for an offset."""


class ClusterLimits:
    """Limiters and budgets of one shard, kept by the ledger (a `Limits`; see the module docstring)."""

    def __init__(self, spec: ClusterLimitsSpec, scope: str) -> None:
        self.spec = spec
        self.scope = scope
        self._limiters: dict[tuple[str, str, str | None], ClusterRateLimiter] = {}
        self._budgets: list[ClusterBudget] = []

    def limiter(self, key: tuple[str, str, str | None], **limits: Any) -> RateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = ClusterRateLimiter(self.spec, key, **limits)
        return limiter

    def budget(self, key: str, limit_usd: float, label: str) -> Budget:
        """The budget `key` of this shard's run, shared with the run's other shards."""
        budget = ClusterBudget(self.spec, f"{self.scope}:{key}", limit_usd, label)
        self._budgets.append(budget)
        return budget

    async def close(self) -> None:
        """Give back the permits and allowances this shard did not use."""
        for limiter in self._limiters.values():
            await limiter.give_back_unused()
        for budget in self._budgets:
            budget.give_back_unused()


class ClusterRateLimiter(RateLimiter):
    """`RateLimiter`'s interface; admissions granted by the ledger, a batch at a time."""

    def __init__(
        self,
        spec: ClusterLimitsSpec,
        key: tuple[str, str, str | None],
        requests: int | None = None,
        tokens: int | None = None,
        per_seconds: float = 60.0,
        max_concurrent: int | None = None,
    ) -> None:
        share = None
        if max_concurrent is not None:
            if spec.workers > max_concurrent:
                raise ConfigError(
                    f"max_concurrent {max_concurrent} of {key[0]!r} cannot be shared by {spec.workers} "
                    "workers: use fewer workers or allow more concurrent calls"
                )
            share = max_concurrent // spec.workers
        super().__init__(
            requests=requests,
            tokens=tokens,
            per_seconds=per_seconds,
            max_concurrent=share,
            clock=spec.clock,
            sleep=spec.sleep or asyncio.sleep,
        )
        self.key = key
        self.spec = spec
        self.batch = 1 if requests is None else max(1, min(spec.batch, requests // spec.workers))
        self._pool: deque[float] = deque()  # granted admission times, in the ledger's clock
        self._offset = 0.0  # the ledger's clock minus ours
        self._refill = asyncio.Lock()
        self.remote_calls = 0

    async def _admit(self, tokens: int) -> tuple[list[float] | None, float]:
        return None, await self._admission(tokens)

    async def _admission(self, tokens: int) -> float:
        """Wait for a granted admission time (in the ledger's clock) and return it."""
        while True:
            at = await self._next_time(tokens)
            delay = at - self._offset - self._clock()
            if delay > 0:
                await self._sleep(delay)
            if self._clock() + self._offset <= at + self.spec.slack_s:
                return at
            await self._give_back([at], tokens)  # woke too late for it: another one

    async def _next_time(self, tokens: int) -> float:
        request_time = None
        if self.requests is not None:
            async with self._refill:
                if not self._pool:
                    self._pool.extend(await self._grant(self.batch, 0))
                request_time = self._pool.popleft()
        if self.tokens is not None and tokens:
            (token_time,) = await self._grant(1, tokens)
            return token_time if request_time is None else max(request_time, token_time)
        return request_time if request_time is not None else self._clock() + self._offset

    async def _grant(self, count: int, tokens: int) -> list[float]:
        before = self._clock()
        self.remote_calls += 1
        now, times = await self.spec.ledger.grant.remote(
            self.key,
            count,
            requests=self.requests,
            tokens=tokens,
            token_limit=self.tokens,
            per_seconds=self.per_seconds,
            admissions=not tokens,
        )
        if self.spec.estimate_offset:
            self._offset = now - (before + self._clock()) / 2
        return times

    async def _give_back(self, times: list[float], tokens: int = 0) -> None:
        if times:
            self.remote_calls += 1
            await self.spec.ledger.give_back.remote(self.key, times, tokens)

    async def give_back_unused(self) -> None:
        unused, self._pool = list(self._pool), deque()
        await self._give_back(unused)


class ClusterBudget(Budget):
    """`Budget`'s interface; spends an allowance from the ledger, asking for more when it is out."""

    def __init__(self, spec: ClusterLimitsSpec, key: str, limit_usd: float, label: str) -> None:
        super().__init__(limit_usd, label)
        self.spec = spec
        self.key = key
        self.allowance_usd = 0.0
        self.remote_calls = 0

    def reserve(self, amount_usd: float, *, provider: str) -> float:
        import ray

        with self._lock:
            if self.allowance_usd < amount_usd:
                want = max(amount_usd - self.allowance_usd, self.limit_usd * self.spec.chunk_share)
                need = amount_usd - self.allowance_usd
                self.remote_calls += 1  # blocks this worker's loop for one round trip per chunk
                granted, committed = ray.get(
                    self.spec.ledger.allowance.remote(
                        self.key, limit_usd=self.limit_usd, want=want, need=need
                    )
                )
                self.allowance_usd += granted
                if self.allowance_usd < amount_usd:
                    raise BudgetExceeded(
                        f"{self.label}: budget ${self.limit_usd:.4f} would be exceeded across the cluster "
                        f"(committed ${committed:.4f} by every worker, this call up to "
                        f"${amount_usd:.4f}); refused before the call",
                        provider=provider,
                    )
            self.allowance_usd -= amount_usd
            self.reserved_usd += amount_usd
            return amount_usd

    def settle(self, reservation_usd: float, actual_usd: float) -> None:
        with self._lock:
            self.reserved_usd = max(self.reserved_usd - reservation_usd, 0.0)
            self.spent_usd += actual_usd
            self.allowance_usd += max(reservation_usd - actual_usd, 0.0)

    def give_back_unused(self) -> None:
        with self._lock:
            unused, self.allowance_usd = self.allowance_usd, 0.0
        if unused > 0 and not math.isclose(unused, 0.0):
            self.spec.ledger.give_back_allowance.remote(self.key, unused)
