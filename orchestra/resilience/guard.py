"""Everything around one provider's calls, in order: cache, circuit breaker, budgets, the
endpoint's Retry-After hold, rate limit, then the call itself with a per-attempt timeout and
retries. Connectors stay plain.

>>> import asyncio
>>> from orchestra.providers.function import FunctionConnector
>>> from orchestra.types import ModelRequest
>>> echo = FunctionConnector("echo")
>>> guard = ProviderGuard("echo", echo, retry=RetryPolicy(), breaker=CircuitBreaker("echo"))
>>> async def ask() -> str:
...     deadline = asyncio.get_running_loop().time() + 30
...     context = CallContext(attempt_timeout_s=15, deadline=deadline, log=AttemptLog())
...     response = await guard.call(ModelRequest(prompt="hello"), context)
...     return f"{response.content} after {context.log.attempts} attempt(s)"
>>> asyncio.run(ask())
'hello after 1 attempt(s)'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from orchestra.cache.base import ResponseCache, cache_key
from orchestra.errors import ProviderError, ProviderTimeout, RateLimited
from orchestra.profiling import count_api_call
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.pricing import Price
from orchestra.providers.replay import estimate_tokens
from orchestra.resilience.breaker import CircuitBreaker
from orchestra.resilience.budget import Budget
from orchestra.resilience.hold import RetryAfterHold
from orchestra.resilience.limiter import Permit, RateLimiter
from orchestra.resilience.retry import AttemptLog, RetryPolicy, failed_attempt
from orchestra.types import ModelRequest, ModelResponse


@dataclass(slots=True)
class CallContext:
    """What one call needs to know about its request: time left, the run's budget, its log."""

    attempt_timeout_s: float
    deadline: float
    log: AttemptLog
    run_budget: Budget | None = None
    cache_hit: bool = False
    waited_s: float = 0.0
    hooks: Any = None


class ProviderGuard:
    def __init__(
        self,
        name: str,
        connector: BaseModelConnector,
        *,
        retry: RetryPolicy,
        breaker: CircuitBreaker,
        limiter: RateLimiter | None = None,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        cache_ttl_s: float = 3600.0,
        expected_output_tokens: int = 1024,
        hold: RetryAfterHold | None = None,
    ) -> None:
        self.name = name
        self.hold = hold or RetryAfterHold(name, max_retry_after_s=retry.max_retry_after_s)
        self.connector = connector
        self.retry = retry
        self.breaker = breaker
        self.limiter = limiter
        self.budget = budget
        self.cache = cache
        self.cache_ttl_s = cache_ttl_s
        self.price: Price | None = getattr(connector, "price", None)
        self.expected_output_tokens = expected_output_tokens

    async def call(self, request: ModelRequest, context: CallContext) -> ModelResponse:
        """The provider's answer, or the last error after retries (a `ProviderError`)."""
        key = cache_key(self.name, self.connector, request) if self.cache is not None else None
        if key is not None and (cached := await self._cached(key)) is not None:
            context.cache_hit = True
            return cached
        self.breaker.before_call()
        tokens, worst_cost = self.estimate(request)
        reservations = self._reserve(worst_cost, context.run_budget)
        actual_cost = 0.0
        try:
            response = await self.retry.run(
                partial(self._attempt, request, tokens, context),
                deadline=context.deadline,
                log=context.log,
                delay=self.retry_delay,
                sleep=self.hold.sleep,
            )
            actual_cost = response.cost_usd
        finally:
            self._settle(reservations, actual_cost)
        self.breaker.record_success()
        if key is not None and self.cache is not None:
            await self.cache.set(key, response, self.cache_ttl_s)
        return response

    async def stream(self, request: ModelRequest, context: CallContext) -> AsyncIterator[str | ModelResponse]:
        """Text deltas then the `ModelResponse`; failures before the first delta are retried."""
        self.breaker.before_call()
        tokens, worst_cost = self.estimate(request)
        reservations = self._reserve(worst_cost, context.run_budget)
        actual_cost = 0.0
        try:
            for attempt in range(1, self.retry.max_attempts + 1):
                started = False
                await self._wait_for_hold(context)
                context.log.attempts += 1
                count_api_call()
                permit, timeout = await self._admit(tokens, context)
                try:
                    async with asyncio.timeout(timeout):
                        async for item in self.connector.stream(request):
                            if isinstance(item, ModelResponse):
                                actual_cost = item.cost_usd
                                permit.settle(item.input_tokens + item.output_tokens)
                            else:
                                started = True
                            yield item
                    self.breaker.record_success()
                    self.hold.clear()
                    return
                except TimeoutError as err:
                    error: ProviderError = ProviderTimeout("no answer within the timeout", provider=self.name)
                    error.__cause__ = err
                except ProviderError as err:
                    error = err
                finally:
                    permit.release()
                self.breaker.record_failure(error)
                self.hold.note(error)
                wait = self.retry_delay(attempt, error)
                out_of_time = asyncio.get_running_loop().time() + wait >= context.deadline
                if started or not error.retryable or attempt == self.retry.max_attempts or out_of_time:
                    raise error
                context.log.failures.append(failed_attempt(error, wait))
                await self.hold.sleep(wait)
        finally:
            self._settle(reservations, actual_cost)

    async def _attempt(self, request: ModelRequest, tokens: int, context: CallContext) -> ModelResponse:
        await self._wait_for_hold(context)
        count_api_call()
        permit, timeout = await self._admit(tokens, context)
        try:
            async with asyncio.timeout(timeout):
                response = await self.connector.generate(request)
        except TimeoutError as err:
            error = ProviderTimeout(f"no answer within {timeout:.3g} s", provider=self.name)
            self.breaker.record_failure(error)
            raise error from err
        except ProviderError as err:
            self.breaker.record_failure(err)
            self.hold.note(err)
            raise
        finally:
            permit.release()
        self.hold.clear()
        permit.settle(response.input_tokens + response.output_tokens)
        return response

    def retry_delay(self, attempt: int, error: BaseException | None) -> float:
        """The retry policy's wait, but never shorter than what the endpoint's hold has left."""
        return max(self.retry.delay(attempt, error), self.hold.remaining())

    async def _wait_for_hold(self, context: CallContext) -> None:
        """Wait out the endpoint's Retry-After hold; a request whose deadline comes first fails
        now with `RateLimited` (not the provider's failure: no call was made)."""
        remaining = self.hold.remaining()
        if remaining <= 0:
            return
        if asyncio.get_running_loop().time() + remaining >= context.deadline:
            raise RateLimited(
                f"held for {remaining:.3g} s more by the endpoint's Retry-After, "
                "past this request's deadline",
                provider=self.name,
                retry_after=remaining,
            )
        context.waited_s += remaining
        await self.hold.sleep(remaining)

    async def _admit(self, tokens: int, context: CallContext) -> tuple[Permit, float]:
        """A rate-limit permit and the attempt's timeout. A request whose deadline has passed
        raises here, before the provider is asked: it counts neither as the provider's failure
        nor against its rate limit."""
        self._attempt_timeout(context)
        permit = await self._permit(tokens, context)
        try:
            return permit, self._attempt_timeout(context)
        except ProviderTimeout:
            permit.release()
            raise

    async def _permit(self, tokens: int, context: CallContext) -> Permit:
        if self.limiter is None:
            return _NO_PERMIT
        permit = await self.limiter.acquire(tokens)
        context.waited_s += permit.waited_s
        return permit

    def _attempt_timeout(self, context: CallContext) -> float:
        remaining = context.deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise ProviderTimeout("the request's deadline has passed", provider=self.name)
        return min(context.attempt_timeout_s, remaining)

    def estimate(self, request: ModelRequest) -> tuple[int, float]:
        """Tokens to reserve and the worst-case cost: estimated input, output at max_tokens."""
        input_tokens = estimate_tokens((request.system_prompt or "") + request.prompt)
        output_tokens = request.max_tokens or self.expected_output_tokens
        worst = self.price.cost(input_tokens, output_tokens) if self.price is not None else 0.0
        return input_tokens + output_tokens, worst

    def _reserve(self, amount: float, run_budget: Budget | None) -> list[tuple[Budget, float]]:
        reservations = []
        try:
            for budget in (self.budget, run_budget):
                if budget is not None:
                    reservations.append((budget, budget.reserve(amount, provider=self.name)))
        except ProviderError:
            self._settle(reservations, 0.0)
            raise
        return reservations

    @staticmethod
    def _settle(reservations: list[tuple[Budget, float]], actual: float) -> None:
        for budget, reserved in reservations:
            budget.settle(reserved, actual)

    async def _cached(self, key: str) -> ModelResponse | None:
        assert self.cache is not None
        started = time.perf_counter()
        response = await self.cache.get(key)
        if response is None:
            return None
        metadata = {**response.metadata, "cache_hit": True, "original_cost_usd": response.cost_usd}
        return response.model_copy(
            update={
                "cost_usd": 0.0,
                "latency_ms": (time.perf_counter() - started) * 1000.0,
                "metadata": metadata,
            }
        )


class _NoPermit(Permit):
    def __init__(self) -> None:
        self.waited_s = 0.0

    def settle(self, tokens: int) -> None:
        return None

    def release(self) -> None:
        return None


_NO_PERMIT = _NoPermit()
