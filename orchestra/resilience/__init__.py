"""Resilience policies wrapped around providers: retries, circuit breaking, rate limits, budgets."""

from orchestra.resilience.breaker import CircuitBreaker
from orchestra.resilience.budget import Budget
from orchestra.resilience.guard import CallContext, ProviderGuard
from orchestra.resilience.hold import RetryAfterHold, shared_hold
from orchestra.resilience.limiter import RateLimiter, forget_limiter, shared_limiter
from orchestra.resilience.retry import AttemptLog, RetryPolicy

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
