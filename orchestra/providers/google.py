"""Google Gemini through the official `google-genai` SDK (imported only here).

`google-genai` is the successor of the deprecated `google-generativeai` package. The SDK's own
retries are off (one attempt) so that orchestra's retry policy counts every attempt.

    connector = GeminiConnector("google", "gemini-1.5-flash", api_key="AIza...")
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from orchestra.errors import ConfigError, MalformedResponse, ProviderError
from orchestra.providers.http_errors import error_for_status
from orchestra.providers.pricing import Price
from orchestra.providers.sdk import SDKConnector, connector_options
from orchestra.providers.usage import Usage
from orchestra.types import ModelProvider, ModelRequest, ModelResponse

try:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ConfigError("the Gemini connector needs google-genai: pip install 'orchestra[google]'") from err

if TYPE_CHECKING:
    from orchestra.config.schema import ProviderSettings
    from orchestra.providers.registry import BuildContext


class GeminiConnector(SDKConnector):
    """`generate_content` through `genai.Client(...).aio`, with the Gemini Developer API key."""

    provider_type = ModelProvider.GOOGLE

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
        options = genai_types.HttpOptions(
            base_url=base_url,
            api_version="v1beta",
            timeout=int(timeout * 1000),
            retry_options=genai_types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key or "not-set", http_options=options)

    def _config(self, request: ModelRequest) -> genai_types.GenerateContentConfig:
        values: dict[str, Any] = {"temperature": request.temperature}
        if request.max_tokens is not None:
            values["max_output_tokens"] = request.max_tokens
        if request.system_prompt:
            values["system_instruction"] = request.system_prompt
        values.update(self.params)
        values.update(request.model_specific_params)
        return genai_types.GenerateContentConfig(**values)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self._check_key()
        started = time.perf_counter()
        try:
            result = await self._client.aio.models.generate_content(
                model=self.model, contents=request.prompt, config=self._config(request)
            )
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not result.candidates:
            raise MalformedResponse("the response has no candidates", provider=self.name)
        candidate = result.candidates[0]
        confidence = math.exp(candidate.avg_logprobs) if candidate.avg_logprobs is not None else None
        return self._response(
            result.text or "",
            result.model_version or self.model,
            _usage(result.usage_metadata),
            latency_ms,
            {"finish_reason": str(candidate.finish_reason) if candidate.finish_reason else None},
            confidence,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Text deltas as they arrive, then the complete `ModelResponse` (with usage)."""
        self._check_key()
        started = time.perf_counter()
        parts: list[str] = []
        usage_metadata, model, finish = None, self.model, None
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=request.prompt, config=self._config(request)
            )
            async for chunk in chunks:
                usage_metadata = chunk.usage_metadata or usage_metadata
                model = chunk.model_version or model
                if chunk.candidates and chunk.candidates[0].finish_reason:
                    finish = str(chunk.candidates[0].finish_reason)
                if chunk.text:
                    parts.append(chunk.text)
                    yield chunk.text
        except Exception as err:  # mapped by type below; CancelledError is not an Exception
            raise self._map_error(err) from err
        latency_ms = (time.perf_counter() - started) * 1000.0
        yield self._response(
            "".join(parts),
            model,
            _usage(usage_metadata),
            latency_ms,
            {"finish_reason": finish, "streamed": True},
        )

    async def _probe(self) -> None:
        await self._client.aio.models.get(model=self.model)

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    def _map_error(self, err: Exception) -> ProviderError:
        if isinstance(err, genai_errors.APIError):
            headers = dict(getattr(getattr(err, "response", None), "headers", None) or {})
            return error_for_status(self.name, int(err.code or 500), err.message or str(err), headers)
        return self._other_error(err)


def _usage(metadata: Any) -> Usage:
    """Gemini counts cached tokens inside the prompt count; thoughts are billed as output."""
    if metadata is None:
        return Usage(0, 0)
    thoughts = metadata.thoughts_token_count or 0
    return Usage(
        input_tokens=metadata.prompt_token_count or 0,
        output_tokens=(metadata.candidates_token_count or 0) + thoughts,
        cached_input_tokens=metadata.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def build_gemini(name: str, provider: ProviderSettings, context: BuildContext) -> GeminiConnector:
    """A `GeminiConnector` for `models.<name>` of type google."""
    return GeminiConnector(
        name, **connector_options(name, provider, context, example_model="gemini-1.5-flash")
    )
