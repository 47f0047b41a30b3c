"""Running a cascade: call its stages one after another, keep the first accepted answer.

    answers = await cascade_answers(record, decision, policy, guard_for, request_for, context_for)

The policy (`orchestra.routing.cascade.CascadePolicy`) judges each answer; this module only
calls. Every step is written to `record.routing["cascade"]` (kept or escalated, with the
probability, threshold and reason), so it reaches the request table (`routing_json`) and MLflow.
A failed call escalates too; when every stage fails, the rule's other providers are tried as
plain failover (unjudged). When the last stage fails after an earlier answer was escalated, the
most probable earlier answer is returned rather than none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestra.pipeline import Answers, call_provider
from orchestra.resilience.guard import CallContext, ProviderGuard
from orchestra.routing.cascade import CascadePolicy
from orchestra.routing.decision import RoutingDecision
from orchestra.tracking.records import CallRecord, RequestRecord
from orchestra.types import ModelRequest, ModelResponse


async def cascade_answers(
    record: RequestRecord,
    decision: RoutingDecision,
    policy: CascadePolicy,
    guard_for: Callable[[str], ProviderGuard],
    request_for: Callable[[str], ModelRequest],
    context_for: Callable[[str], CallContext],
) -> Answers:
    """The calls made and the kept answer (one response, or none when every call failed)."""
    allowed = decision.chosen + decision.fallbacks
    stages = [p for p in policy.stages if p in allowed]
    failover = [p for p in allowed if p not in stages]
    calls: list[CallRecord] = []
    steps: list[dict[str, Any]] = []
    answered: list[tuple[ModelResponse, float]] = []
    latency_ms = 0.0
    kept: ModelResponse | None = None
    for wave, name in enumerate(stages + failover):
        call, response = await call_provider(guard_for(name), request_for(name), context_for(name), wave)
        calls.append(call)
        latency_ms += call.latency_ms
        if response is None:
            steps.append({"provider": name, "accepted": False, "reason": f"call failed: {call.error_type}"})
            continue
        if name not in stages or name == stages[-1]:
            reason = "last stage: always kept" if name in stages else "failover after every stage failed"
            steps.append({"provider": name, "accepted": True, "reason": reason})
            kept = response
            break
        verdict = policy.judge(
            name,
            record.prompt,
            response.content,
            previous=[r.content for r, _ in answered],
            logprob=response.confidence_score,
        )
        steps.append(verdict.as_dict())
        answered.append((response, verdict.probability))
        if verdict.accept:
            kept = response
            break
    if kept is None and answered:  # the later stages failed: the best answer judged so far
        kept = max(answered, key=lambda pair: pair[1])[0]
        steps.append({"provider": kept.provider, "accepted": True, "reason": "later stages failed"})
    if record.routing is not None:
        record.routing["cascade"] = {
            "stages": stages,
            "threshold": policy.threshold,
            "steps": steps,
            "escalations": [s for s in steps if not s["accepted"]],
            "kept": kept.provider if kept is not None else None,
        }
    return Answers(calls, [kept] if kept is not None else [], latency_ms)
