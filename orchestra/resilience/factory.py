"""Building each provider's guard from config: retries, breaker, shared limiter, budget, cache.

guard = build_guard("openai", connector, settings, cache=None)

Limiters and budgets come from the `Limits` in use: this process's (`LocalLimits`, the default)
or a cluster's (`resilience/cluster.py`, on Ray), chosen for a block of code with `using_limits`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from orchestra.cache.base import ResponseCache
from orchestra.config.schema import ProviderSettings, Settings
from orchestra.providers.base import BaseModelConnector
from orchestra.resilience.breaker import CircuitBreaker
from orchestra.resilience.budget import Budget
from orchestra.resilience.guard import ProviderGuard
from orchestra.resilience.hold import shared_hold
from orchestra.resilience.limiter import RateLimiter, shared_limiter
from orchestra.resilience.retry import RetryPolicy


class Limits(Protocol):
    """Where a guard's rate limiter and budgets come from."""

    def limiter(self, key: tuple[str, str, str | None], **limits: Any) -> RateLimiter: ...

    def budget(self, key: str, limit_usd: float, label: str) -> Budget: ...


class LocalLimits:
    """This process's: one shared limiter per endpoint, a new budget per guard."""

    def limiter(self, key: tuple[str, str, str | None], **limits: Any) -> RateLimiter:
        return shared_limiter(key, **limits)

    def budget(self, key: str, limit_usd: float, label: str) -> Budget:
        return Budget(limit_usd, label)


_LOCAL = LocalLimits()
_LIMITS: ContextVar[Limits | None] = ContextVar("orchestra_limits", default=None)


def limits_in_use() -> Limits:
    """The `Limits` of this context: the innermost `using_limits`, else this process's."""
    return _LIMITS.get() or _LOCAL


@contextlib.contextmanager
def using_limits(limits: Limits) -> Iterator[Limits]:
    """Guards built inside this block (and the tasks it starts) take their limits from `limits`."""
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def build_guard(
    name: str,
    connector: BaseModelConnector,
    settings: Settings,
    cache: ResponseCache | None,
    limits: Limits | None = None,
) -> ProviderGuard:
    """The guard of provider `name`; its limiter and budget come from `limits` (default: the
    `Limits` in use)."""
    limits = limits or limits_in_use()
    provider = settings.models.get(name) or ProviderSettings()
    performance = settings.performance
    retry = provider.retry or performance.retry
    breaker = performance.circuit_breaker
    key = endpoint_key(name, connector)
    return ProviderGuard(
        name,
        connector,
        retry=RetryPolicy(**retry.model_dump()),
        hold=shared_hold(key, max_retry_after_s=retry.max_retry_after_s),
        breaker=CircuitBreaker(name, **breaker.model_dump()),
        limiter=_limiter(key, provider, limits),
        budget=None
        if provider.budget_usd is None
        else limits.budget(f"provider:{name}", provider.budget_usd, f"provider {name!r}"),
        cache=cache,
        cache_ttl_s=performance.cache_ttl,
        expected_output_tokens=performance.expected_output_tokens,
    )


def endpoint_key(name: str, connector: BaseModelConnector) -> tuple[str, str, str | None]:
    """What identifies an endpoint process-wide: its limiter and its Retry-After hold."""
    return (name, connector.provider_type.value, getattr(connector, "base_url", None))


def _limiter(
    key: tuple[str, str, str | None], provider: ProviderSettings, limits: Limits
) -> RateLimiter | None:
    """The shared limiter of this endpoint (from `limits`), or None when no limit is configured."""
    configured = provider.rate_limit.model_dump() if provider.rate_limit else {}
    if not any(configured.get(k) for k in ("requests", "tokens", "max_concurrent")):
        return None
    return limits.limiter(key, **configured)
