"""A circuit breaker per provider: after repeated failures it opens, then probes for recovery.

closed -> (failure_threshold consecutive failures) -> open for cooldown_s -> half-open: one
probe call is let through; success closes the circuit, failure reopens it with the cooldown
doubled (up to max_cooldown_s). A Retry-After is not the breaker's: the endpoint's shared
hold (`orchestra.resilience.hold`) makes calls wait for it.

    breaker = CircuitBreaker("openai", failure_threshold=5, cooldown_s=30)
    breaker.before_call()      # raises ProviderCoolingDown while open
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from orchestra.errors import ProviderCoolingDown, ProviderError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self.failures = 0
        self._cooldown_s = cooldown_s
        self._open_until = 0.0
        self._probing = False

    def before_call(self) -> bool:
        """Let a call through (True if it is the recovery probe) or raise `ProviderCoolingDown`."""
        with self._lock:
            now = self._clock()
            if self.state == OPEN and now >= self._open_until:
                self.state, self._probing = HALF_OPEN, False
            if self.state == CLOSED:
                return False
            if self.state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            wait = max(self._open_until - now, 0.0)
            raise self._cooling(wait)

    def record_success(self) -> None:
        with self._lock:
            self.state, self.failures, self._probing = CLOSED, 0, False
            self._cooldown_s = self.base_cooldown_s

    def record_failure(self, error: ProviderError) -> None:
        """Count a provider-side failure; errors of the request itself (400, auth) do not count."""
        with self._lock:
            now = self._clock()
            if not error.retryable:
                if self.state == HALF_OPEN:
                    self._probing = False
                return
            self.failures += 1
            if self.state == HALF_OPEN:
                self._cooldown_s = min(self._cooldown_s * 2, self.max_cooldown_s)
                self._open(now)
            elif self.failures >= self.failure_threshold:
                self._open(now)

    def _open(self, now: float) -> None:
        self.state, self._probing = OPEN, False
        self._open_until = max(self._open_until, now + self._cooldown_s)

    def _cooling(self, wait_s: float) -> ProviderCoolingDown:
        return ProviderCoolingDown(
            f"circuit {self.state} after {self.failures} failure(s); next try in {wait_s:.1f} s",
            provider=self.provider,
            retry_after=wait_s,
        )
