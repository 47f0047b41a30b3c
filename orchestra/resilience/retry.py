"""Retries with exponential backoff and full jitter, honouring Retry-After (tenacity underneath).

Only errors marked `retryable` (429, 408, 5xx, connection errors, timeouts, unreadable bodies)
are retried; a Retry-After from the provider replaces the backoff for that wait (capped).
No retry is started that could not finish before the request's deadline.

    policy = RetryPolicy(max_attempts=3)
    response = await policy.run(lambda: connector.generate(request), deadline=loop.time() + 30)
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from orchestra.errors import ProviderError
from orchestra.redact import SECRETS

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


@dataclass(slots=True)
class Attempt:
    """One failed attempt, as logged with the call."""

    error_type: str
    message: str
    status: int | None
    waited_s: float


@dataclass(slots=True)
class AttemptLog:
    attempts: int = 0
    failures: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        log: AttemptLog | None = None,
        delay: Callable[[int, BaseException | None], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> T:
        """Call `attempt` until it succeeds, fails for good, runs out of attempts or of time.

        The first attempt runs directly (no retry machinery on the happy path); tenacity takes
        over from the first retryable failure. `delay` replaces `self.delay` (the guard adds
        its endpoint's hold), `sleep` replaces `asyncio.sleep` (an injected clock).
        """
        log = log if log is not None else AttemptLog()
        log.attempts += 1
        try:
            return await attempt()
        except ProviderError as error:
            if not error.retryable or self.max_attempts == 1:
                raise
            first_error = error
        return await self._retry(attempt, first_error, deadline, log, delay or self.delay, sleep)

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after failed attempt number `attempt`: the provider's Retry-After
        (capped), else exponential backoff with full jitter."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        return random.uniform(0.0, min(self.max_delay_s, self.initial_delay_s * 2 ** (attempt - 1)))

    async def _retry(
        self,
        attempt: Callable[[], Awaitable[T]],
        first_error: ProviderError,
        deadline: float | None,
        log: AttemptLog,
        delay: Callable[[int, BaseException | None], float],
        sleep: Callable[[float], Awaitable[None]] | None,
    ) -> T:
        # imported on the first retry: tenacity (and the tornado support it loads when tornado is
        # installed) is not needed by a call that succeeds at once
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        replayed = False

        async def next_attempt() -> T:
            nonlocal replayed
            if not replayed:  # tenacity's first round re-raises the error already seen
                replayed = True
                raise first_error
            return await attempt()

        loop = asyncio.get_running_loop()

        def wait(state: RetryCallState) -> float:
            return delay(state.attempt_number, state.outcome.exception() if state.outcome else None)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if error is not None:
                log.failures.append(failed_attempt(error, state.upcoming_sleep))

        def out_of_time(state: RetryCallState) -> bool:
            return deadline is not None and loop.time() + state.upcoming_sleep >= deadline

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | out_of_time,
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
            **({"sleep": sleep} if sleep is not None else {}),
        )
        async for state in retrying:
            with state:
                if replayed:
                    log.attempts += 1
                return await next_attempt()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def failed_attempt(error: BaseException, waited_s: float) -> Attempt:
    """An `Attempt` for `error`, its message with secrets masked (it is logged)."""
    message = SECRETS.redact(getattr(error, "message", None) or str(error))
    return Attempt(type(error).__name__, message, getattr(error, "status", None), waited_s)
