"""The cascade step of a request: call its stages one after another, keep the first accepted answer.

    answers = await cascade_answers(request, policy)   # a Request routed by the `cascade` strategy
    answers.cascade["escalations"]

The policy (`orchestra.routing.cascade.CascadePolicy`) judges each answer; this step only calls.
Every step is returned in `Answers.cascade` (kept or escalated, with the probability, threshold
and reason); the orchestrator writes it to the record's routing (`routing["cascade"]`), so it
reaches the request table (`routing_json`) and MLflow. A failed call escalates too; when every
stage fails, the rule's other providers are tried as plain failover (unjudged). When the last
stage fails after an earlier answer was escalated, the most probable earlier answer is returned
rather than none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.engine.records import CallRecord
from orchestra.types import ModelResponse

if TYPE_CHECKING:
    from orchestra.engine.request import Answers, Request
    from orchestra.routing.cascade import CascadePolicy


async def cascade_answers(request: Request, policy: CascadePolicy) -> Answers:
    """The calls made and the kept answer (one response, or none when every call failed)."""
    from orchestra.engine.request import Answers

    decision = request.decision
    allowed = decision.chosen + decision.fallbacks
    stages = [p for p in policy.stages if p in allowed]
    failover = [p for p in allowed if p not in stages]
    calls: list[CallRecord] = []
    steps: list[dict[str, Any]] = []
    answered: list[tuple[ModelResponse, float]] = []
    latency_ms = 0.0
    kept: ModelResponse | None = None
    for wave, name in enumerate(stages + failover):
        call, response = await request.call(name, wave)
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
            request.prompt,
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
    trace = {
        "stages": stages,
        "threshold": policy.threshold,
        "steps": steps,
        "escalations": [s for s in steps if not s["accepted"]],
        "kept": kept.provider if kept is not None else None,
    }
    return Answers(calls, [kept] if kept is not None else [], latency_ms, cascade=trace)
