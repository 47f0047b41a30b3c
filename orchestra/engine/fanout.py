"""Calling the routed providers: in parallel, each through its guard, in waves for failover.

The first wave calls the decision's chosen providers; while fewer answers than wanted came
back, the next wave calls as many fallbacks as answers are missing (in the rule's order).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from orchestra.engine.records import CallRecord, RequestRecord, RetriedError
from orchestra.errors import (
    CallFailure,
    InsufficientResponses,
    OrchestraError,
    ProviderError,
    ProviderTimeout,
)
from orchestra.logs import get_logger
from orchestra.redact import SECRETS
from orchestra.resilience.guard import CallContext, ProviderGuard
from orchestra.resilience.retry import AttemptLog
from orchestra.routing.decision import RoutingDecision
from orchestra.types import ModelRequest, ModelResponse

logger = get_logger("orchestra.pipeline")


@dataclass
class Answers:
    """Every call made for one request, and the successful responses in routing order."""

    calls: list[CallRecord]
    responses: list[ModelResponse]
    latency_ms: float

    @property
    def failures(self) -> list[CallRecord]:
        return [call for call in self.calls if not call.ok]


def add_answers(record: RequestRecord, answers: Answers) -> None:
    """Record every call of `answers` and add up the usage of the successful ones."""
    record.calls.extend(answers.calls)
    record.latency_ms += answers.latency_ms
    for call in answers.calls:
        if call.ok:
            record.providers_used.append(call.provider)
            record.input_tokens += call.input_tokens
            record.output_tokens += call.output_tokens
            record.cost_usd += call.cost_usd


def set_answer(record: RequestRecord, response: ModelResponse) -> None:
    """`response` is the answer returned: its text, provider, quality label and confidence."""
    record.response = response.content
    record.answered_by = response.provider
    record.quality = response.metadata.get("quality")
    record.confidence = response.confidence_score


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
    try:
        response = await guard.call(request, context)
    except Exception as err:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        record, response = failure_record(guard.name, err, context, start_ns, elapsed_ms, wave), None
    else:
        if on_answer is not None:
            on_answer(response)
        record = success_record(guard, response, context, start_ns, wave)
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


async def gather_answers(
    decision: RoutingDecision,
    guard_for: Callable[[str], ProviderGuard],
    request_for: Callable[[str], ModelRequest],
    context_for: Callable[[str], CallContext],
    *,
    on_answer: Callable[[ModelResponse], None] | None = None,
    wave_timeout_s: float | None = None,
) -> Answers:
    """Call the chosen providers, then fallbacks for each failure, until enough answered.

    With `wave_timeout_s`, a wave stops waiting after that long: calls still running are
    cancelled and recorded as timeouts (a consensus goes ahead with whoever answered).
    """
    queue = decision.chosen + decision.fallbacks
    wanted = len(decision.chosen)
    calls: list[CallRecord] = []
    responses: list[ModelResponse] = []
    latency_ms = 0.0
    position = wave = 0
    while len(responses) < wanted and position < len(queue):
        batch = queue[position : position + wanted - len(responses)]
        position += len(batch)
        guards = [guard_for(name) for name in batch]
        if len(guards) == 1 and wave_timeout_s is None:
            results = [
                await call_provider(guards[0], request_for(batch[0]), context_for(batch[0]), wave, on_answer)
            ]
        else:
            results = await _wave(guards, batch, request_for, context_for, wave, on_answer, wave_timeout_s)
        latency_ms += max(call.latency_ms for call, _ in results)
        for call, response in results:
            calls.append(call)
            if response is not None:
                responses.append(response)
        wave += 1
    return Answers(calls, responses, latency_ms)


async def _wave(
    guards: list[ProviderGuard],
    names: list[str],
    request_for: Callable[[str], ModelRequest],
    context_for: Callable[[str], CallContext],
    wave: int,
    on_answer: Callable[[ModelResponse], None] | None,
    timeout_s: float | None,
) -> list[tuple[CallRecord, ModelResponse | None]]:
    contexts = [context_for(name) for name in names]
    start_ns = time.time_ns()
    tasks = [
        asyncio.ensure_future(call_provider(g, request_for(n), c, wave, on_answer))
        for g, n, c in zip(guards, names, contexts, strict=True)
    ]
    if timeout_s is None:
        return list(await asyncio.gather(*tasks))
    await asyncio.wait(tasks, timeout=timeout_s)
    results = []
    for task, name, context in zip(tasks, names, contexts, strict=True):
        if task.done():
            results.append(task.result())
            continue
        task.cancel()
        error = ProviderTimeout(f"no answer within the consensus timeout of {timeout_s:g} s", provider=name)
        results.append((failure_record(name, error, context, start_ns, timeout_s * 1000.0, wave), None))
    await asyncio.gather(*tasks, return_exceptions=True)
    return results


def new_context(attempt_timeout_s: float, deadline: float, run_budget=None, hooks=None) -> CallContext:
    return CallContext(
        attempt_timeout_s=attempt_timeout_s,
        deadline=deadline,
        log=AttemptLog(),
        run_budget=run_budget,
        hooks=hooks,
    )


async def stream_answer(
    record: RequestRecord,
    decision: RoutingDecision,
    guard_for: Callable[[str], ProviderGuard],
    request_for: Callable[[str], ModelRequest],
    context_for: Callable[[str], CallContext],
) -> AsyncIterator[str]:
    """Deltas from the first provider that starts answering; earlier failures fail over.

    Fills `record` (calls, usage, response) as it goes, so it is complete however the stream ends.
    """
    for wave, name in enumerate(decision.chosen + decision.fallbacks):
        guard, context = guard_for(name), context_for(name)
        start_ns, started = time.time_ns(), time.perf_counter()
        parts: list[str] = []
        try:
            async for item in guard.stream(request_for(name), context):
                if isinstance(item, ModelResponse):
                    call = success_record(guard, item, context, start_ns, wave)
                    add_answers(record, Answers([call], [item], item.latency_ms))
                    set_answer(record, item)
                    return
                parts.append(item)
                yield item
        except Exception as err:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            add_answers(
                record,
                Answers([failure_record(name, err, context, start_ns, elapsed_ms, wave)], [], elapsed_ms),
            )
            if parts:  # text already reached the consumer: no failover, the stream breaks
                record.response = "".join(parts)
                raise
        except BaseException:  # closed early or cancelled: keep what was delivered
            record.response = "".join(parts)
            raise
    raise InsufficientResponses(1, 0, failures(record.calls), request_id=record.request_id)
