"""Anthropic's Messages API through the official `anthropic` SDK (imported only here).

Usage counts cache reads and cache writes apart from plain input; all three are priced.

    connector = AnthropicConnector("anthropic", "claude-3-5-haiku-20241022", api_key="sk-ant-...")
"""

from __future__ import annotations

import inspect
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
from orchestra.providers.usage import Usage
from orchestra.types import ModelProvider, ModelRequest, ModelResponse

try:
    import anthropic
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ConfigError("the Anthropic connector needs its SDK: pip install 'orchestra[anthropic]'") from err

if TYPE_CHECKING:
    from orchestra.config.schema import ProviderSettings
    from orchestra.providers.registry import BuildContext

_SDK_TAKES_TEMPERATURE = (
    "temperature" in inspect.signature(anthropic.resources.AsyncMessages.create).parameters
)

DEFAULT_MAX_TOKENS = 1024
"""The Messages API requires max_tokens; used when neither the request nor config sets it."""


class AnthropicConnector(SDKConnector):
    """Messages through `AsyncAnthropic`, with the system prompt as Anthropic's `system` field."""

    provider_type = ModelProvider.ANTHROPIC

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
        missing_key: ProviderError | None = None,
    ) -> None:
        super().__init__(name, model, price=price, params=params, missing_key=missing_key)
        self.base_url = base_url
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "not-set", base_url=base_url, timeout=timeout, max_retries=0
        )

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        }
        temperature = min(request.temperature, 1.0)  # Anthropic's range is [0, 1]
        if _SDK_TAKES_TEMPERATURE:
            arguments["temperature"] = temperature
        else:  # newer SDKs dropped the keyword; the API still reads it from the body
            arguments["extra_body"] = {"temperature": temperature}
        if request.system_prompt:
            arguments["system"] = request.system_prompt
        arguments.update(self.params)
        arguments.update(request.model_specific_params)
        return arguments

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self._check_key()
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(**self._arguments(request))
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        return self._response(
            text,
            message.model or self.model,
            _usage(message.usage),
            latency_ms,
            {"finish_reason": message.stop_reason, "response_id": message.id},
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Text deltas as they arrive, then the complete `ModelResponse` (with usage)."""
        self._check_key()
        started = time.perf_counter()
        parts: list[str] = []
        input_usage: Any = None
        output_tokens = 0
        stop_reason, model = None, self.model
        try:
            events = await self._client.messages.create(**self._arguments(request), stream=True)
            async for event in events:
                if event.type == "message_start":
                    input_usage, model = event.message.usage, event.message.model or model
                elif event.type == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                    parts.append(event.delta.text)
                    yield event.delta.text
                elif event.type == "message_delta":
                    output_tokens = event.usage.output_tokens or output_tokens
                    stop_reason = event.delta.stop_reason or stop_reason
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        if input_usage is None:
            raise MalformedResponse("the stream ended without a message_start event", provider=self.name)
        usage = _usage(input_usage, output_tokens=output_tokens)
        latency_ms = (time.perf_counter() - started) * 1000.0
        yield self._response(
            "".join(parts), model, usage, latency_ms, {"finish_reason": stop_reason, "streamed": True}
        )

    async def _probe(self) -> None:
        await self._client.models.list()

    async def aclose(self) -> None:
        await self._client.close()

    def _map_error(self, err: Exception) -> ProviderError:
        return self._map_stainless_error(anthropic, err)


def _usage(usage: Any, *, output_tokens: int | None = None) -> Usage:
    """Anthropic reports input_tokens without cache reads/writes; `Usage` counts all input."""
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=output_tokens if output_tokens is not None else (usage.output_tokens or 0),
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def build_anthropic(name: str, provider: ProviderSettings, context: BuildContext) -> AnthropicConnector:
    """An `AnthropicConnector` for `models.<name>` of type anthropic."""
    return AnthropicConnector(
        name, **connector_options(name, provider, context, example_model="claude-3-5-haiku-20241022")
    )
