"""The OpenAI chat-completions adapter: OpenAI itself and any OpenAI-compatible server.

vLLM, Ollama, LM Studio or a company gateway are the same wire format at another `base_url`.
The official `openai` SDK is imported only here; its own retries are off (max_retries=0) so
that orchestra's retry policy counts and logs every attempt.

    connector = OpenAIConnector("openai", "gpt-4o-mini", api_key="sk-...")
    response = await connector.generate(ModelRequest(prompt="Hi"))
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from orchestra.errors import (
    ConfigError,
    MalformedResponse,
    ProviderError,
)
from orchestra.providers.pricing import Price
from orchestra.providers.sdk import SDKConnector, connector_options
from orchestra.providers.usage import Usage, confidence_from_logprobs
from orchestra.types import ModelProvider, ModelRequest, ModelResponse

try:
    import openai
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ConfigError("the OpenAI connector needs the openai SDK: pip install 'orchestra[openai]'") from err

if TYPE_CHECKING:
    from orchestra.config.schema import ProviderSettings
    from orchestra.providers.registry import BuildContext


class OpenAIConnector(SDKConnector):
    """Chat completions through the official SDK (`AsyncOpenAI`)."""

    provider_type = ModelProvider.OPENAI

    def __init__(
        self,
        name: str,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60.0,
        price: Price | None = None,
        params: dict[str, Any] | None = None,
        compatible: bool = False,
        missing_key: ProviderError | None = None,
    ) -> None:
        super().__init__(name, model, price=price, params=params, missing_key=missing_key)
        self.base_url = base_url
        self.compatible = compatible
        self.provider_type = ModelProvider.OPENAI_COMPATIBLE if compatible else ModelProvider.OPENAI
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "not-set",
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
        )

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.prompt})
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": request.temperature,
        }
        if request.max_tokens is not None:
            # OpenAI's current name; compatible servers still expect the older max_tokens.
            arguments["max_tokens" if self.compatible else "max_completion_tokens"] = request.max_tokens
        arguments.update(self.params)
        arguments.update(request.model_specific_params)
        return arguments

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self._check_key()
        arguments = self._arguments(request)
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(**arguments)
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not completion.choices:
            raise MalformedResponse("the response has no choices", provider=self.name)
        choice = completion.choices[0]
        usage = _usage(completion.usage)
        logprobs = [t.logprob for t in (choice.logprobs.content or [])] if choice.logprobs else []
        return self._response(
            choice.message.content or "",
            completion.model or self.model,
            usage,
            latency_ms,
            {"finish_reason": choice.finish_reason, "response_id": completion.id},
            confidence_from_logprobs(logprobs),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Text deltas as they arrive, then the complete `ModelResponse` (with usage)."""
        self._check_key()
        arguments = self._arguments(request) | {"stream": True}
        if not self.compatible:
            arguments["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        parts: list[str] = []
        usage, model, finish = None, self.model, None
        logprobs: list[float] = []
        try:
            chunks = await self._client.chat.completions.create(**arguments)
            async for chunk in chunks:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        yield choice.delta.content
                    if choice.logprobs and choice.logprobs.content:
                        logprobs.extend(t.logprob for t in choice.logprobs.content)
                    finish = choice.finish_reason or finish
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        yield self._response(
            "".join(parts),
            model,
            _usage(usage),
            latency_ms,
            {"finish_reason": finish, "streamed": True},
            confidence_from_logprobs(logprobs),
        )

    async def _probe(self) -> None:
        await self._client.models.list()

    async def aclose(self) -> None:
        await self._client.close()

    def _map_error(self, err: Exception) -> ProviderError:
        return self._map_stainless_error(openai, err)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(0, 0)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=(getattr(prompt_details, "cached_tokens", None) or 0),
        reasoning_tokens=(getattr(completion_details, "reasoning_tokens", None) or 0),
    )


def build_openai(name: str, provider: ProviderSettings, context: BuildContext) -> OpenAIConnector:
    """An `OpenAIConnector` for `models.<name>` of type openai or openai_compatible."""
    compatible = provider.type == ModelProvider.OPENAI_COMPATIBLE
    if compatible and not provider.base_url:
        raise ConfigError(f"models.{name}: an openai_compatible provider needs base_url")
    options = connector_options(
        name, provider, context, example_model="gpt-4o-mini", key_required=not compatible
    )
    return OpenAIConnector(name, compatible=compatible, **options)
