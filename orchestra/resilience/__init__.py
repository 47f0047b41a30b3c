"""Resilience policies wrapped around providers: retries, circuit breaking, rate limits, budgets."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.resilience.breaker import CircuitBreaker
    from orchestra.resilience.budget import Budget
    from orchestra.resilience.guard import CallContext, ProviderGuard
    from orchestra.resilience.hold import RetryAfterHold, shared_hold
    from orchestra.resilience.limiter import RateLimiter, forget_limiter, shared_limiter
    from orchestra.resilience.retry import AttemptLog, RetryPolicy
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.resilience.breaker": ["CircuitBreaker"],
            "orchestra.resilience.budget": ["Budget"],
            "orchestra.resilience.guard": ["CallContext", "ProviderGuard"],
            "orchestra.resilience.hold": ["RetryAfterHold", "shared_hold"],
            "orchestra.resilience.limiter": ["RateLimiter", "forget_limiter", "shared_limiter"],
            "orchestra.resilience.retry": ["AttemptLog", "RetryPolicy"],
        },
    )

__all__ = [
    "AttemptLog",
    "Budget",
    "CallContext",
    "CircuitBreaker",
    "ProviderGuard",
    "RateLimiter",
    "RetryAfterHold",
    "RetryPolicy",
    "forget_limiter",
    "shared_hold",
    "shared_limiter",
]
