"""Calling the routed providers: in parallel, with per-provider timeouts, in waves for failover.

The first wave calls the decision's chosen providers; while fewer answers than wanted came
back, the next wave calls as many fallbacks as answers are missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestra.errors import OrchestraError, ProviderError, ProviderTimeout
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.registry import ModelRegistry
from orchestra.routing.decision import RoutingDecision
from orchestra.tracking.records import CallRecord
from orchestra.tracking.redact import SECRETS
from orchestra.types import ModelRequest, ModelResponse


@dataclass
class Answers:
    """Every call made for one request, and the successful responses in routing order."""

    calls: list[CallRecord]
    responses: list[ModelResponse]
    latency_ms: float

    @property
    def failures(self) -> list[CallRecord]:
        return [call for call in self.calls if not call.ok]


async def call_provider(
    connector: BaseModelConnector, request: ModelRequest, timeout_s: float, wave: int
) -> tuple[CallRecord, ModelResponse | None]:
    """One call, never raising: failures come back as a failed `CallRecord`."""
    start_ns = time.time_ns()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            response = await connector.generate(request)
    except TimeoutError:
        error: Exception = ProviderTimeout(f"no answer within {timeout_s:g} s", provider=connector.name)
    except OrchestraError as err:
        error = err
    except Exception as err:  # a connector bug must not sink the other providers' answers
        error = ProviderError(f"unexpected {type(err).__name__}: {err}", provider=connector.name)
    else:
        return (
            CallRecord(
                provider=connector.name,
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
            ),
            response,
        )
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return (
        CallRecord(
            provider=connector.name,
            model=None,
            start_ns=start_ns,
            end_ns=time.time_ns(),
            ok=False,
            latency_ms=elapsed_ms,
            error_type=type(error).__name__,
            error_message=SECRETS.redact(getattr(error, "message", str(error))),
            wave=wave,
        ),
        None,
    )


async def gather_answers(
    decision: RoutingDecision,
    registry: ModelRegistry,
    request_for: Callable[[str], ModelRequest],
    timeout_for: Callable[[str], float],
    request_id: str,
) -> Answers:
    """Call the chosen providers, then fallbacks for each failure, until enough answered."""
    queue = decision.chosen + decision.fallbacks
    wanted = len(decision.chosen)
    calls: list[CallRecord] = []
    responses: list[ModelResponse] = []
    latency_ms = 0.0
    position = wave = 0
    while len(responses) < wanted and position < len(queue):
        batch = queue[position : position + wanted - len(responses)]
        position += len(batch)
        connectors = [registry.get(name, request_id=request_id) for name in batch]
        if len(connectors) == 1:
            results = [await call_provider(connectors[0], request_for(batch[0]), timeout_for(batch[0]), wave)]
        else:
            results = await asyncio.gather(
                *(
                    call_provider(c, request_for(n), timeout_for(n), wave)
                    for c, n in zip(connectors, batch, strict=True)
                )
            )
        latency_ms += max(call.latency_ms for call, _ in results)
        for call, response in results:
            calls.append(call)
            if response is not None:
                responses.append(response)
        wave += 1
    return Answers(calls, responses, latency_ms)
