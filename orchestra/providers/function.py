"""The scripted provider for tests and notebooks: answers come from a function you pass in.

flaky = FunctionConnector("flaky", lambda request: "42", fail_first=2)
slow = FunctionConnector("slow", lambda request: "ok", delay_s=5.0)   # times out
down = FunctionConnector("down", fail_always=True)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

from orchestra.errors import ProviderError, ProviderUnavailable
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.replay import estimate_tokens
from orchestra.types import ModelProvider, ModelRequest, ModelResponse

Responder = Callable[[ModelRequest], "str | ModelResponse | Awaitable[str | ModelResponse]"]


def echo(request: ModelRequest) -> str:
    """The default responder: the prompt back."""
    return request.prompt


class FunctionConnector(BaseModelConnector):
    """A provider whose answers, delays and failures are scripted.

    - `respond(request)` returns text or a `ModelResponse` (sync or async); it may raise.
    - `delay_s` sleeps before answering (a slow provider; past the timeout it times out).
    - `fail_first=n` fails the first n calls; `fail_always=True` fails every call.
    - `error` builds the exception raised on a scripted failure.
    `calls` counts every call, failed ones too.
    """

    provider_type = ModelProvider.FUNCTION

    def __init__(
        self,
        name: str = "function",
        respond: Responder = echo,
        *,
        model_name: str = "scripted",
        delay_s: float = 0.0,
        fail_first: int = 0,
        fail_always: bool = False,
        error: Callable[[str], ProviderError] | None = None,
        cost_per_call: float = 0.0,
        confidence: float | None = None,
    ) -> None:
        super().__init__(name)
        self.respond = respond
        self.model_name = model_name
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.error = error or (lambda provider: ProviderUnavailable("scripted failure", provider=provider))
        self.cost_per_call = cost_per_call
        self.confidence = confidence
        self.calls = 0

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_always or self.calls <= self.fail_first:
            raise self.error(self.name)
        answer = self.respond(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, ModelResponse):
            return answer
        return self.response(
            answer,
            model_name=self.model_name,
            input_tokens=estimate_tokens(request.prompt),
            output_tokens=estimate_tokens(answer),
            latency_ms=self.delay_s * 1000.0,
            cost_usd=self.cost_per_call,
            confidence_score=self.confidence,
        )

    def estimate_cost(self, request: ModelRequest) -> float | None:
        return self.cost_per_call

    async def validate_connection(self) -> bool:
        return not self.fail_always

    def get_supported_models(self) -> list[str]:
        return [self.model_name]
