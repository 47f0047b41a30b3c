"""Retry-After as one hold per endpoint: every request and retry to it in the process waits.

When a server answers 429 (or 503) with a Retry-After, the endpoint's hold is extended to then
(capped at `retry.max_retry_after_s`); every call to that endpoint, from any request, retry or
`Orchestra` instance, waits it out first, or fails at once when the hold outlasts its
request's deadline. A success clears the hold. A Retry-After that cannot be honoured ("soon",
`inf`, negative, a date years ahead) is ignored for the normal backoff, with one warning per
episode (until a success).

    hold = shared_hold(("openai", "openai", None), max_retry_after_s=60)
    hold.note(error)       # after a failed call: extends the hold by its Retry-After
    await hold.sleep(hold.remaining())
    hold.clear()           # after a success
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestra.errors import ProviderUnavailable
from orchestra.logs import get_logger

logger = get_logger("orchestra.resilience")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_REGISTRY: dict[Any, RetryAfterHold] = {}
_REGISTRY_LOCK = threading.Lock()


class RetryAfterHold:
    """The time until which an endpoint asked not to be called; thread-safe. `clock` and
    `sleep` are the endpoint's time source: its holds and its retries' backoff use them."""

    def __init__(
        self,
        endpoint: str,
        *,
        max_retry_after_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.max_retry_after_s = max_retry_after_s
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0
        self._warned = False

    def note(self, error: BaseException) -> None:
        """Take a failed call's Retry-After into account: extend the hold by it (capped), or
        warn once that it cannot be honoured."""
        seconds = getattr(error, "retry_after", None)
        if isinstance(error, ProviderUnavailable) and seconds is not None and _usable(seconds):
            with self._lock:
                self._until = max(self._until, self.clock() + min(seconds, self.max_retry_after_s))
            return
        header = getattr(error, "retry_after_header", None)
        if header is None:
            return
        with self._lock:
            warn, self._warned = not self._warned, True
        if warn:
            logger.warning(
                "%s sent Retry-After %r, which cannot be honoured (not a number or date, negative, "
                "infinite or more than a day away): retrying with the normal backoff",
                self.endpoint,
                header,
            )

    def remaining(self) -> float:
        """Seconds until the endpoint may be called again (0 when it may be called now)."""
        with self._lock:
            return max(self._until - self.clock(), 0.0)

    def clear(self) -> None:
        """A call succeeded: the endpoint is open again."""
        with self._lock:
            self._until, self._warned = 0.0, False

    def configure(self, max_retry_after_s: float) -> None:
        self.max_retry_after_s = max_retry_after_s


def _usable(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds >= 0


def shared_hold(
    key: Any, *, max_retry_after_s: float = 60.0, clock: Clock | None = None, sleep: Sleep | None = None
) -> RetryAfterHold:
    """The process-wide hold of endpoint `key` (created on first use). `clock` and `sleep`,
    when given, replace its time source (tests pass a manual clock)."""
    with _REGISTRY_LOCK:
        hold = _REGISTRY.get(key)
        if hold is None:
            name = key[0] if isinstance(key, tuple) and key else str(key)
            hold = _REGISTRY[key] = RetryAfterHold(str(name), max_retry_after_s=max_retry_after_s)
        else:
            hold.configure(max_retry_after_s)
        if clock is not None:
            hold.clock = clock
        if sleep is not None:
            hold.sleep = sleep
        return hold
