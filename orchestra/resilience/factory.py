"""Building each provider's guard from config: retries, breaker, shared limiter, budget, cache.

guard = build_guard("openai", connector, settings, cache=None)
"""

from __future__ import annotations

from orchestra.cache.base import ResponseCache
from orchestra.config.schema import ProviderSettings, Settings
from orchestra.providers.base import BaseModelConnector
from orchestra.resilience.breaker import CircuitBreaker
from orchestra.resilience.budget import Budget
from orchestra.resilience.guard import ProviderGuard
from orchestra.resilience.hold import shared_hold
from orchestra.resilience.limiter import RateLimiter, shared_limiter
from orchestra.resilience.retry import RetryPolicy


def build_guard(
    name: str, connector: BaseModelConnector, settings: Settings, cache: ResponseCache | None
) -> ProviderGuard:
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
        limiter=_limiter(key, provider, settings),
        budget=Budget(provider.budget_usd, f"provider {name!r}") if provider.budget_usd is not None else None,
        cache=cache,
        cache_ttl_s=performance.cache_ttl,
        expected_output_tokens=performance.expected_output_tokens,
    )


def endpoint_key(name: str, connector: BaseModelConnector) -> tuple[str, str, str | None]:
    """What identifies an endpoint process-wide: its limiter and its Retry-After hold."""
    return (name, connector.provider_type.value, getattr(connector, "base_url", None))


def _limiter(
    key: tuple[str, str, str | None], provider: ProviderSettings, settings: Settings
) -> RateLimiter | None:
    """The process-wide limiter of this endpoint, or None when no limit is configured."""
    limits = provider.rate_limit.model_dump() if provider.rate_limit else {}
    if not any(limits.get(k) for k in ("requests", "tokens", "max_concurrent")):
        return None
    return shared_limiter(key, **limits)
