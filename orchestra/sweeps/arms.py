"""What a sweep arm and a demo arm share: answer a prompt set, then summarise the outcomes.

outcomes = await answer_all(orch, [(prompt, "general"), ...], concurrency=32, user_id="me")
summary = summarize_outcomes(outcomes)   # requests, errors, cost, latency, shares, win rate
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.analysis.winrate import WinRate, win_rate
from orchestra.engine.result import RequestResult
from orchestra.errors import OrchestraError

if TYPE_CHECKING:
    from orchestra.engine.orchestrator import Orchestra

Outcome = RequestResult | None
"""`process_request`'s result, or None for a request that failed (it is logged as failed)."""


async def answer_all(
    orch: Orchestra,
    prompts: Sequence[tuple[str, str]],
    concurrency: int,
    on_done: Callable[[int], None] | None = None,
    *,
    request_ids: Sequence[str] | None = None,
    on_each: Callable[[int], None] | None = None,
    **options: Any,
) -> list[Outcome]:
    """Every (prompt, task type) through `orch.process_request`, at most `concurrency` at once,
    in prompt order; `on_done(n)` is called as the n-th request ends (answered or not), and
    `on_each(i)` as prompt i does. `request_ids` gives each request its id (a sweep's)."""
    limit = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, prompt: str, task_type: str) -> Outcome:
        nonlocal done
        async with limit:
            try:
                own_id: dict[str, Any] = {"request_id": request_ids[index]} if request_ids else {}
                return await orch.process_request(prompt, task_type=task_type, **options, **own_id)
            except OrchestraError:
                return None  # logged as a failed request; counted as an error
            finally:
                done += 1
                if on_done is not None:
                    on_done(done)
                if on_each is not None:
                    on_each(index)

    return list(
        await asyncio.gather(*(one(i, prompt, task_type) for i, (prompt, task_type) in enumerate(prompts)))
    )


@dataclass(frozen=True)
class OutcomeSummary:
    """One arm's outcomes. Means are over answered requests (None if none was answered);
    failed requests count as errors, not as losses."""

    requests: int
    errors: int
    cost_per_request: float | None
    latency_ms: float | None
    calls_per_request: float | None
    answered_share: dict[str, float]
    """Provider -> share of the answered requests, most frequent first."""
    win_rate: WinRate | None
    """Over the answers with a quality label; None if no answer has one."""

    @property
    def answered(self) -> int:
        return self.requests - self.errors

    def _repr_html_(self) -> str:
        from orchestra.display import fields_html

        return fields_html(self, caption="Outcomes")


def summarize_outcomes(outcomes: Sequence[Outcome]) -> OutcomeSummary:
    """Requests, errors, mean cost, latency and calls per answered request, who answered, win rate."""
    answered = [o["metadata"] for o in outcomes if o is not None]
    n = len(answered)
    labels = [m["quality"] for m in answered if m["quality"] is not None and not math.isnan(m["quality"])]
    shares = Counter(m["answered_by"] for m in answered)
    return OutcomeSummary(
        requests=len(outcomes),
        errors=len(outcomes) - n,
        cost_per_request=sum(m["cost_usd"] for m in answered) / n if n else None,
        latency_ms=sum(m["latency_ms"] for m in answered) / n if n else None,
        calls_per_request=sum(len(m["providers_called"]) for m in answered) / n if n else None,
        answered_share={provider: count / n for provider, count in shares.most_common()},
        win_rate=win_rate(labels) if labels else None,
    )
