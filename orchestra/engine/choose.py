"""From the answers to the one returned: consensus when asked for, and the low-agreement policy.

await choose_answer(record, decision, answers, consensus=manager, ask_more=ask_more)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from orchestra.config.schema import ConsensusSettings
from orchestra.consensus.manager import ConsensusManager
from orchestra.engine.fanout import Answers, add_answers, failures, set_answer
from orchestra.engine.records import RequestRecord
from orchestra.errors import (
    BudgetExceeded,
    ConsensusNotReached,
    ConsensusTimeout,
    InsufficientResponses,
)
from orchestra.routing.decision import RoutingDecision

AskMore = Callable[[int], Awaitable[Answers | None]]


async def choose_answer(
    record: RequestRecord,
    decision: RoutingDecision,
    answers: Answers,
    *,
    consensus: ConsensusManager,
    settings: ConsensusSettings,
    ask_more: AskMore,
    hooks: Any = None,
) -> None:
    """Fill `record` with the chosen answer, or raise why there is none."""
    responses = list(answers.responses)
    if not responses and answers.calls and all(c.error_type == "BudgetExceeded" for c in answers.calls):
        raise BudgetExceeded(
            "; ".join(c.error_message or "" for c in answers.calls),
            provider=answers.calls[0].provider,
            request_id=record.request_id,
        )
    timed_out = any(c.error_type == "ProviderTimeout" for c in answers.failures)
    if decision.wants_consensus and settings.timeout_s is not None and len(responses) < 2 and timed_out:
        raise ConsensusTimeout(
            f"only {len(responses)} answer(s) within the consensus timeout of {settings.timeout_s:g} s",
            failures(answers.calls),
            request_id=record.request_id,
        )
    if not responses or len(responses) < decision.min_providers:
        raise InsufficientResponses(
            max(decision.min_providers, 1),
            len(responses),
            failures(answers.calls),
            request_id=record.request_id,
        )
    chosen = responses[0]
    if decision.wants_consensus and len(responses) >= 2:
        context = {"task_type": record.task_type, "prompt": record.prompt, "request_id": record.request_id}
        record.consensus_start_ns = time.time_ns()
        chosen, outcome = await consensus.decide(responses, context)
        rounds = 1
        while outcome.low_agreement and settings.low_agreement_policy == "ask_more":
            more = await ask_more(settings.extra_providers)
            if more is None or not more.calls:
                break
            add_answers(record, more)
            responses.extend(more.responses)
            rounds += 1
            chosen, outcome = await consensus.decide(responses, context)
        record.consensus_end_ns = time.time_ns()
        record.consensus = outcome.as_dict() | {"rounds": rounds}
        if hooks is not None and hooks.wants("after_consensus"):
            await hooks.emit("after_consensus", request_id=record.request_id, outcome=outcome, chosen=chosen)
        if outcome.low_agreement and settings.low_agreement_policy == "raise":
            raise ConsensusNotReached(
                f"agreement {outcome.agreement:.3f} / confidence {outcome.confidence:.3f} below the "
                f"thresholds ({settings.similarity_threshold}, {settings.confidence_threshold}) among "
                f"{', '.join(outcome.providers)}",
                request_id=record.request_id,
            )
    set_answer(record, chosen)
