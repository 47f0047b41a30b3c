"""One request in flight: the `Request` object carries what serving it needs, step by step.

    request = Request(request_id, prompt, task_type, options, decision, deadline, budget, orch)
    answers = await request.answers()        # the routed providers, in parallel, in failover waves
    choice = await request.choose(answers)   # consensus (asking more providers if the policy says so)

`Orchestra.process_request` routes, builds the `Request`, runs these steps and writes what they
return into the request's record; nothing here writes the record.

Waves: the first calls the decision's chosen providers; while fewer answers than wanted came
back, the next calls as many fallbacks as answers are missing (in the rule's order).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from orchestra.consensus.context import TaskContext
from orchestra.engine.calls import call_provider, failure_record, failures, new_context, success_record
from orchestra.engine.cascade import cascade_answers
from orchestra.engine.records import CallRecord
from orchestra.errors import (
    BudgetExceeded,
    ConsensusNotReached,
    ConsensusTimeout,
    InsufficientResponses,
    ProviderTimeout,
)
from orchestra.types import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from orchestra.config.schema import Settings
    from orchestra.consensus.base import ConsensusOutcome
    from orchestra.consensus.manager import ConsensusManager
    from orchestra.engine.hooks import Hooks
    from orchestra.engine.options import RequestOptions
    from orchestra.providers.registry import ModelRegistry
    from orchestra.resilience.budget import Budget
    from orchestra.resilience.guard import CallContext, ProviderGuard
    from orchestra.routing.decision import RoutingDecision
    from orchestra.routing.router import TaskRouter


class Engine(Protocol):
    """What a request uses of its `Orchestra`."""

    settings: Settings
    hooks: Hooks
    consensus_manager: ConsensusManager
    model_registry: ModelRegistry
    task_router: TaskRouter

    def guard_for(self, name: str) -> ProviderGuard: ...


@dataclass(frozen=True, slots=True)
class Answers:
    """Every call of one gathering, and the successful responses in routing order."""

    calls: list[CallRecord]
    responses: list[ModelResponse]
    latency_ms: float
    cascade: dict[str, Any] | None = None
    """A cascade's steps (kept or escalated, and why), when the request was cascaded."""

    @property
    def failures(self) -> list[CallRecord]:
        return [call for call in self.calls if not call.ok]


@dataclass(frozen=True, slots=True)
class Choice:
    """What choosing decided: the answer returned, the consensus that picked it (if one ran),
    the extra answers it asked for, and the error to raise when there is no acceptable answer
    (after those answers are recorded)."""

    answer: ModelResponse | None
    outcome: ConsensusOutcome | None = None
    rounds: int = 0
    more: tuple[Answers, ...] = ()
    consensus_start_ns: int = 0
    consensus_end_ns: int = 0
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A routed request: its prompt, options and routing decision, the time it has left, and the
    engine parts it calls through."""

    request_id: str
    prompt: str
    task_type: str
    options: RequestOptions
    decision: RoutingDecision
    deadline: float
    """In the event loop's clock: when the whole request must be done."""
    run_budget: Budget | None
    engine: Engine

    # ---- what each provider call needs ----------------------------------------------------

    def model_request(self, name: str) -> ModelRequest:
        """What is sent to provider `name`."""
        return model_request(self.engine.settings, name, self.prompt, self.options)

    def call_context(self, name: str) -> CallContext:
        """A fresh context for one call of provider `name`: its attempt timeout, the deadline."""
        provider = self.engine.settings.models.get(name)
        timeout = provider.timeout if provider is not None else None
        if timeout is None:
            timeout = self.engine.settings.performance.request_timeout
        return new_context(timeout, self.deadline, self.run_budget, self.engine.hooks)

    def task_context(self) -> TaskContext:
        """What a consensus strategy knows of this request."""
        options = self.options
        return TaskContext.for_request(
            self.task_type, self.prompt, self.request_id, execution=options.execution, schema=options.schema
        )

    # ---- calling the providers ------------------------------------------------------------

    async def answers(self) -> Answers:
        """The routed providers' answers: one stage after another when the request is cascaded,
        else in parallel waves (with consensus: embedded as they arrive, and bounded by
        `consensus.timeout_s`)."""
        if self.decision.strategy == "cascade":
            policy = self.engine.task_router.cascade_policy
            if policy is not None:
                return await cascade_answers(self, policy)
        if self.decision.wants_consensus:
            return await self.gather(
                self.decision.chosen,
                self.decision.fallbacks,
                prepare=True,
                wave_timeout_s=self.engine.settings.consensus.timeout_s,
            )
        return await self.gather(self.decision.chosen, self.decision.fallbacks)

    async def more_answers(self, count: int, called: set[str]) -> Answers | None:
        """Up to `count` answers from providers not `called` yet (the rule's fallbacks first,
        then every registered provider); None when there is nobody left to ask."""
        candidates = self.decision.fallbacks + self.engine.model_registry.names()
        extra = [p for p in dict.fromkeys(candidates) if p not in called][:count]
        if not extra:
            return None
        return await self.gather(extra, [], prepare=self.decision.wants_consensus)

    async def gather(
        self,
        chosen: list[str],
        fallbacks: list[str],
        *,
        prepare: bool = False,
        wave_timeout_s: float | None = None,
    ) -> Answers:
        """Call `chosen`, then fallbacks for each failure, until enough answered.

        With `prepare`, the consensus strategy sees each answer as it arrives. With
        `wave_timeout_s`, a wave stops waiting after that long: calls still running are
        cancelled and recorded as timeouts (a consensus goes ahead with whoever answered).
        """
        queue = chosen + fallbacks
        wanted = len(chosen)
        calls: list[CallRecord] = []
        responses: list[ModelResponse] = []
        latency_ms = 0.0
        position = wave = 0
        while len(responses) < wanted and position < len(queue):
            size = min(wanted - len(responses), len(queue) - position)
            if size == 1 and wave_timeout_s is None:  # the usual case: no wave of tasks to gather
                position += 1
                results = [await self.call(queue[position - 1], wave, prepare)]
            else:
                batch = queue[position : position + size]
                position += size
                results = await self._wave(batch, wave, prepare, wave_timeout_s)
            latency_ms += max(call.latency_ms for call, _ in results)
            for call, response in results:
                calls.append(call)
                if response is not None:
                    responses.append(response)
            wave += 1
        return Answers(calls, responses, latency_ms)

    async def call(
        self, name: str, wave: int, prepare: bool = False, context: CallContext | None = None
    ) -> tuple[CallRecord, ModelResponse | None]:
        """One call of provider `name` (never raising: a failure is a failed `CallRecord`)."""
        on_answer = self._prepare if prepare else None
        context = context if context is not None else self.call_context(name)
        guard, request = self.engine.guard_for(name), self.model_request(name)
        return await call_provider(guard, request, context, wave, on_answer)

    def _prepare(self, response: ModelResponse) -> None:
        self.engine.consensus_manager.prepare(self.task_type, response)

    async def _wave(
        self, names: list[str], wave: int, prepare: bool, timeout_s: float | None
    ) -> list[tuple[CallRecord, ModelResponse | None]]:
        contexts = [self.call_context(name) for name in names]
        start_ns = time.time_ns()
        tasks = [
            asyncio.ensure_future(self.call(name, wave, prepare, context))
            for name, context in zip(names, contexts, strict=True)
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
            error = ProviderTimeout(
                f"no answer within the consensus timeout of {timeout_s:g} s", provider=name
            )
            results.append((failure_record(name, error, context, start_ns, timeout_s * 1000.0, wave), None))
        await asyncio.gather(*tasks, return_exceptions=True)
        return results

    # ---- choosing -------------------------------------------------------------------------

    async def choose(self, answers: Answers) -> Choice:
        """The answer to return: the first one, or the consensus of several when the decision
        wants one (asking `consensus.extra_providers` more while agreement is low, when the
        policy is `ask_more`). Raises at once when there is nothing to choose from; an error
        after more answers were asked for comes back in `Choice.error`, so they are recorded."""
        settings = self.engine.settings.consensus
        decision = self.decision
        responses = list(answers.responses)
        refused = [isinstance(call.error, BudgetExceeded) for call in answers.calls]
        if not responses and refused and all(refused):
            raise BudgetExceeded(
                "; ".join(c.error_message or "" for c in answers.calls),
                provider=answers.calls[0].provider,
                request_id=self.request_id,
            )
        timed_out = any(isinstance(c.error, ProviderTimeout) for c in answers.failures)
        if decision.wants_consensus and settings.timeout_s is not None and len(responses) < 2 and timed_out:
            raise ConsensusTimeout(
                f"only {len(responses)} answer(s) within the consensus timeout of {settings.timeout_s:g} s",
                failures(answers.calls),
                request_id=self.request_id,
            )
        if not responses or len(responses) < decision.min_providers:
            raise InsufficientResponses(
                max(decision.min_providers, 1),
                len(responses),
                failures(answers.calls),
                request_id=self.request_id,
            )
        if not (decision.wants_consensus and len(responses) >= 2):
            return Choice(responses[0])
        return await self._consensus(answers, responses)

    async def _consensus(self, answers: Answers, responses: list[ModelResponse]) -> Choice:
        settings = self.engine.settings.consensus
        manager = self.engine.consensus_manager
        context = self.task_context()
        called = {call.provider for call in answers.calls}
        more: list[Answers] = []
        started_ns = time.time_ns()
        try:
            chosen, outcome = await manager.decide(responses, context)
            rounds = 1
            while outcome.low_agreement and settings.low_agreement_policy == "ask_more":
                extra = await self.more_answers(settings.extra_providers, called)
                if extra is None or not extra.calls:
                    break
                more.append(extra)
                called.update(call.provider for call in extra.calls)
                responses = [*responses, *extra.responses]
                rounds += 1
                chosen, outcome = await manager.decide(responses, context)
        except Exception as err:  # recorded with the answers asked for so far, then raised
            return Choice(None, more=tuple(more), consensus_start_ns=started_ns, error=err)
        ended_ns = time.time_ns()
        hooks = self.engine.hooks
        if hooks.wants("after_consensus"):
            await hooks.emit("after_consensus", request_id=self.request_id, outcome=outcome, chosen=chosen)
        error = None
        if outcome.low_agreement and settings.low_agreement_policy == "raise":
            error = ConsensusNotReached(
                f"agreement {outcome.agreement:.3f} / confidence {outcome.confidence:.3f} below the "
                f"thresholds ({settings.similarity_threshold}, {settings.confidence_threshold}) among "
                f"{', '.join(outcome.providers)}",
                request_id=self.request_id,
            )
        return Choice(chosen, outcome, rounds, tuple(more), started_ns, ended_ns, error)

    # ---- streaming ------------------------------------------------------------------------

    async def stream(self) -> AsyncGenerator[str | CallRecord, None]:
        """Text deltas from the first provider that starts answering, and each call's record as
        it ends (a successful one after its last delta). Failures before the first delta fail
        over; one after it ends the stream with that error."""
        calls: list[CallRecord] = []
        for wave, name in enumerate(self.decision.chosen + self.decision.fallbacks):
            guard, context = self.engine.guard_for(name), self.call_context(name)
            start_ns, started = time.time_ns(), time.perf_counter()
            delivered = False
            try:
                async for item in guard.stream(self.model_request(name), context):
                    if isinstance(item, ModelResponse):
                        yield success_record(guard, item, context, start_ns, wave)
                        return
                    delivered = True
                    yield item
            except Exception as err:
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                failed = failure_record(name, err, context, start_ns, elapsed_ms, wave)
                calls.append(failed)
                yield failed
                if delivered:  # text already reached the consumer: no failover, the stream breaks
                    raise
        raise InsufficientResponses(1, 0, failures(calls), request_id=self.request_id)


def model_request(settings: Settings, name: str, prompt: str, options: RequestOptions) -> ModelRequest:
    """What is sent to provider `name`: the prompt, the provider's configured temperature and
    max_tokens, and the options that are set (`models.<name>.params` live in the connector)."""
    provider = settings.models.get(name)
    values: dict[str, Any] = {}
    if provider is not None:
        values = {"temperature": provider.temperature, "max_tokens": provider.max_tokens}
    for key in ("system_prompt", "temperature", "max_tokens"):
        value = getattr(options, key)
        if value is not None:
            values[key] = value
    return ModelRequest(prompt=prompt, **values)
