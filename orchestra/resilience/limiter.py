"""Per-provider rate limits: requests and tokens per window, and concurrent calls.

One `RateLimiter` per provider endpoint is shared by everything in the process (requests,
sweeps, optimisers, every event loop): `shared_limiter(key, ...)` returns the same object
for the same key. An endpoint has one limit per process: asking for the same key with other
limits is a `ConfigError` naming both (a limiter in use is never reconfigured behind its users'
backs); `forget_limiter(key)` drops it, so that the next `shared_limiter` makes a new one (what
already holds the old one keeps it). Admissions are reserved under a lock in first-come order on
a sliding window, so no window of `per_seconds` ever holds more than `requests` admissions, however large the
burst. Token limits use the request's estimated tokens, corrected to the reported usage after
the call.

    limiter = shared_limiter("openai", requests=500, tokens=200_000, per_seconds=60, max_concurrent=20)
    async with await limiter.acquire(tokens=1_200) as permit:
        ...
        permit.settle(actual_tokens)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from orchestra.errors import BadProviderRequest, ConfigError

_REGISTRY: dict[Any, RateLimiter] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_limiter(
    key: Any,
    *,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    **limits: Any,
) -> RateLimiter:
    """The process-wide limiter for `key`, created with `limits` on first use. Asking again with
    other limits raises `ConfigError`. `clock` and `sleep`, when given, replace its time source
    (tests pass a manual clock)."""
    with _REGISTRY_LOCK:
        limiter = _REGISTRY.get(key)
        if limiter is None:
            limiter = _REGISTRY[key] = RateLimiter(**limits)
        elif limiter.limits() != (asked := RateLimiter.describe(**limits)):
            raise ConfigError(
                f"the endpoint {_endpoint(key)} already has a rate limiter in this process with "
                f"{_text(limiter.limits())}; this configuration asks for {_text(asked)}. "
                "One endpoint has one limit per process: give every configuration the same rate_limit, "
                "or call orchestra.resilience.forget_limiter(key) first to start a new limiter"
            )
        if clock is not None:
            limiter._clock = clock
        if sleep is not None:
            limiter._sleep = sleep
        return limiter


def forget_limiter(key: Any) -> RateLimiter | None:
    """Drop the process-wide limiter of `key` (the next `shared_limiter(key, ...)` makes a new
    one); returns it, or None when there was none."""
    with _REGISTRY_LOCK:
        return _REGISTRY.pop(key, None)


def _endpoint(key: Any) -> str:
    if isinstance(key, tuple) and len(key) == 3:
        name, kind, base_url = key
        return f"{name!r} ({kind}{', ' + str(base_url) if base_url else ''})"
    return repr(key)


def _text(limits: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in limits.items())


class Permit:
    """An admitted call: holds a concurrency slot until released; records its actual tokens.
    `admitted_at` is its place in the window, in the limiter's clock."""

    def __init__(self, limiter: RateLimiter, entry: list[float] | None, admitted_at: float = 0.0) -> None:
        self._limiter = limiter
        self._entry = entry
        self.admitted_at = admitted_at
        self.waited_s = 0.0
        self._released = False

    def settle(self, tokens: int) -> None:
        """Replace the token estimate with the usage the provider reported."""
        if self._entry is not None:
            with self._limiter._lock:
                self._entry[1] = float(tokens)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release_slot()

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class RateLimiter:
    def __init__(
        self,
        requests: int | None = None,
        tokens: int | None = None,
        per_seconds: float = 60.0,
        max_concurrent: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._admissions: deque[float] = deque()
        self._token_log: deque[list[float]] = deque()
        self._last_reserved = 0.0
        self._active = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self.configure(
            requests=requests, tokens=tokens, per_seconds=per_seconds, max_concurrent=max_concurrent
        )

    def configure(
        self,
        requests: int | None = None,
        tokens: int | None = None,
        per_seconds: float = 60.0,
        max_concurrent: int | None = None,
    ) -> None:
        with self._lock:
            self.requests, self.tokens, self.per_seconds = requests, tokens, per_seconds
            self.max_concurrent = max_concurrent

    @staticmethod
    def describe(
        requests: int | None = None,
        tokens: int | None = None,
        per_seconds: float = 60.0,
        max_concurrent: int | None = None,
    ) -> dict[str, Any]:
        """Limits as this limiter holds them, for comparing a request for limits with `limits()`."""
        return {
            "requests": requests,
            "tokens": tokens,
            "per_seconds": float(per_seconds),
            "max_concurrent": max_concurrent,
        }

    def limits(self) -> dict[str, Any]:
        return self.describe(self.requests, self.tokens, self.per_seconds, self.max_concurrent)

    async def acquire(self, tokens: int = 0) -> Permit:
        """Wait for a concurrency slot, then for the earliest admission the window allows."""
        if self.tokens is not None and tokens > self.tokens:
            raise BadProviderRequest(
                f"this call needs about {tokens} tokens, more than the limit of {self.tokens} per "
                f"{self.per_seconds:g} s: it can never be admitted",
                provider="limiter",
            )
        started = self._clock()
        await self._acquire_slot()
        try:
            entry, admitted_at = await self._admit(tokens)
        except BaseException:
            self._release_slot()
            raise
        permit = Permit(self, entry, admitted_at)
        permit.waited_s = self._clock() - started
        return permit

    async def _admit(self, tokens: int) -> tuple[list[float] | None, float]:
        """Wait for the earliest admission this process's window allows: (token entry, time)."""
        delay, entry, admitted_at = self._reserve(tokens)
        if delay > 0:
            await self._sleep(delay)
        return entry, admitted_at

    def _reserve(self, tokens: int) -> tuple[float, list[float] | None, float]:
        with self._lock:
            now = self._clock()
            window = self.per_seconds
            while self._admissions and self._admissions[0] <= now - window:
                self._admissions.popleft()
            while self._token_log and self._token_log[0][0] <= now - window:
                self._token_log.popleft()
            at = max(now, self._last_reserved)
            if self.requests is not None and len(self._admissions) >= self.requests:
                at = max(at, self._admissions[-self.requests] + window)
            if self.tokens is not None and tokens:
                at = self._earliest_for_tokens(at, tokens)
            self._last_reserved = at
            if self.requests is not None:
                self._admissions.append(at)
            entry = None
            if self.tokens is not None:
                entry = [at, float(tokens)]
                self._token_log.append(entry)
            return at - now, entry, at

    def _earliest_for_tokens(self, at: float, tokens: int) -> float:
        """The earliest time >= at when the window's tokens plus `tokens` fit the limit."""
        assert self.tokens is not None
        entries = list(self._token_log)
        start = 0
        while True:
            in_window = sum(e[1] for e in entries[start:] if e[0] > at - self.per_seconds)
            if in_window + tokens <= self.tokens:
                return at
            while start < len(entries) and entries[start][0] <= at - self.per_seconds:
                start += 1
            at = entries[start][0] + self.per_seconds

    async def _acquire_slot(self) -> None:
        if self.max_concurrent is None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._active < self.max_concurrent:
                self._active += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future  # a released slot is handed over to us: _active is unchanged
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release_slot()  # it was handed over just as we were cancelled: pass it on
            raise

    def _release_slot(self) -> None:
        if self.max_concurrent is None:
            return
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                if not future.done():
                    loop.call_soon_threadsafe(self._hand_over, future)
                    return
            self._active -= 1

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled before the slot reached it
            self._release_slot()
        else:
            future.set_result(None)

    @property
    def active(self) -> int:
        return self._active
