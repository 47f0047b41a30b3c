"""One provider call, through the provider's guard, as a `CallRecord`: it never raises.

    record, response = await call_provider(guard, request, context, wave=0)
    record.ok, record.attempts, response.content if response else record.error_type

The guard (`orchestra.resilience`) applies the cache, circuit breaker, Retry-After hold,
budgets, rate limit, retries and timeouts; what happened is written into the record's typed
fields. A failure is a record with the exception itself kept (`CallRecord.error`), so the
engine tells errors apart by type.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestra.engine.records import CallRecord, RetriedError
from orchestra.errors import CallFailure, OrchestraError, ProviderError
from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.resilience.guard import CallContext, ProviderGuard
from orchestra.resilience.retry import AttemptLog
from orchestra.types import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from orchestra.engine.hooks import Hooks
    from orchestra.resilience.budget import Budget

logger = get_logger("orchestra.engine")


def failures(calls: list[CallRecord]) -> list[CallFailure]:
    """Each failed call, as the errors that list them report it."""
    return [CallFailure(c.provider, c.error_type or "", c.error_message or "") for c in calls if not c.ok]


def success_record(
    guard: ProviderGuard, response: ModelResponse, context: CallContext, start_ns: int, wave: int
) -> CallRecord:
    usage = response.metadata.get("usage") or {}
    return CallRecord(
        provider=guard.name,
        model=response.model_name,
        start_ns=start_ns,
        end_ns=time.time_ns(),
        ok=True,
        latency_ms=response.latency_ms,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=response.cost_usd,
        quality=response.metadata.get("quality"),
        confidence=response.confidence_score,
        content=response.content,
        wave=wave,
        attempts=context.log.attempts,
        retried_errors=_retried(context),
        cache_hit=context.cache_hit,
        rate_limit_wait_ms=round(context.waited_s * 1000.0, 3) if context.waited_s > 0.001 else 0.0,
        cached_input_tokens=usage.get("cached_input_tokens") or 0,
        cache_write_tokens=usage.get("cache_write_tokens") or 0,
        reasoning_tokens=usage.get("reasoning_tokens") or 0,
    )


def failure_record(
    name: str, error: BaseException, context: CallContext, start_ns: int, elapsed_ms: float, wave: int
) -> CallRecord:
    if not isinstance(error, OrchestraError):  # a connector bug must not sink the other answers
        error = ProviderError(f"unexpected {type(error).__name__}: {error}", provider=name)
    return CallRecord(
        provider=name,
        model=None,
        start_ns=start_ns,
        end_ns=time.time_ns(),
        ok=False,
        latency_ms=elapsed_ms,
        error_type=type(error).__name__,
        error_message=SECRETS.redact(getattr(error, "message", str(error))),
        wave=wave,
        attempts=context.log.attempts,
        retried_errors=_retried(context),
        status=getattr(error, "status", None),
        error=error,
    )


def _retried(context: CallContext) -> list[RetriedError]:
    return [RetriedError(f.error_type, f.message, f.status, f.waited_s) for f in context.log.failures]


async def call_provider(
    guard: ProviderGuard,
    request: ModelRequest,
    context: CallContext,
    wave: int,
    on_answer: Callable[[ModelResponse], None] | None = None,
) -> tuple[CallRecord, ModelResponse | None]:
    """One call through the provider's guard, never raising: failures become a `CallRecord`.

    `on_answer` sees each answer the moment it arrives (consensus starts embedding it then).
    """
    hooks = context.hooks
    if hooks is not None and hooks.wants("before_call"):
        await hooks.emit("before_call", provider=guard.name, request=request, wave=wave)
    start_ns = time.time_ns()
    started = time.perf_counter()
    response: ModelResponse | None
    try:
        answer = await guard.call(request, context)
    except Exception as err:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        record, response = failure_record(guard.name, err, context, start_ns, elapsed_ms, wave), None
    else:
        if on_answer is not None:
            on_answer(answer)
        record, response = success_record(guard, answer, context, start_ns, wave), answer
    if logger.isEnabledFor(logging.DEBUG):
        outcome = "ok" if record.ok else f"{record.error_type}: {record.error_message}"
        logger.debug(
            "call %s (wave %d, %d attempts) %.1f ms: %s",
            guard.name,
            wave,
            record.attempts,
            record.latency_ms,
            outcome,
        )
    if hooks is not None and hooks.wants("after_call"):
        await hooks.emit("after_call", provider=guard.name, call=record, response=response)
    return record, response


def new_context(
    attempt_timeout_s: float, deadline: float, run_budget: Budget | None = None, hooks: Hooks | None = None
) -> CallContext:
    """A fresh context for one call of a request (its own attempt log)."""
    return CallContext(
        attempt_timeout_s=attempt_timeout_s,
        deadline=deadline,
        log=AttemptLog(),
        run_budget=run_budget,
        hooks=hooks,
    )
