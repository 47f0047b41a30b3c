"""What the official-SDK connectors (OpenAI, Anthropic, Gemini) share; no SDK is imported here.

A connector subclass builds its SDK client, implements `generate` (and `stream`), `_probe`
(the cheapest authenticated call) and `_map_error` (SDK exception -> orchestra error).
`connector_options` turns `models.<name>` into the keyword arguments every one of them takes.
"""

from __future__ import annotations

from abc import abstractmethod
from types import ModuleType
from typing import TYPE_CHECKING, Any

from orchestra.errors import (
    ConfigError,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.credentials import missing_key_error, resolve_api_key
from orchestra.providers.http_errors import body_message, error_for_status
from orchestra.providers.pricing import Price
from orchestra.providers.transport_errors import transport_error
from orchestra.providers.usage import Usage
from orchestra.types import ModelResponse

if TYPE_CHECKING:
    from orchestra.config.schema import ProviderSettings
    from orchestra.providers.registry import BuildContext


class SDKConnector(BaseModelConnector):
    """One model behind an SDK client; a missing key is raised on use, not at start-up."""

    def __init__(
        self,
        name: str,
        model: str,
        *,
        price: Price | None = None,
        params: dict[str, Any] | None = None,
        missing_key: ProviderError | None = None,
    ) -> None:
        super().__init__(name)
        self.model = model
        self.price = price
        self.params = dict(params or {})
        self._missing_key = missing_key

    @abstractmethod
    async def _probe(self) -> None:
        """The cheapest call that proves the endpoint and the key work."""

    @abstractmethod
    def _map_error(self, err: Exception) -> ProviderError:
        """Every SDK exception -> an orchestra error, by type and status (never by message)."""

    async def validate_connection(self) -> bool:
        self._check_key()
        try:
            await self._probe()
        except Exception as err:  # mapped by type; CancelledError is not an Exception
            raise self._map_error(err) from err
        return True

    def get_supported_models(self) -> list[str]:
        return [self.model]

    def _check_key(self) -> None:
        if self._missing_key is not None:
            raise self._missing_key

    def _map_stainless_error(self, sdk: ModuleType, err: Exception) -> ProviderError:
        """`_map_error` for the SDKs that share one generated exception tree (openai, anthropic)."""
        if isinstance(err, sdk.APITimeoutError):
            return ProviderTimeout("request timed out", provider=self.name)
        if isinstance(err, sdk.APIConnectionError):
            return ProviderUnavailable(f"connection failed: {err}", provider=self.name)
        if isinstance(err, sdk.APIStatusError):
            message = body_message(err.body) or err.message
            return error_for_status(self.name, err.status_code, message, dict(err.response.headers))
        if isinstance(err, sdk.APIError):
            return MalformedResponse(f"unreadable response: {err}", provider=self.name)
        return self._other_error(err)

    def _other_error(self, err: Exception) -> ProviderError:
        """An exception the SDK did not classify: a transport error, or a plain `ProviderError`."""
        return transport_error(self.name, err) or ProviderError(
            f"{type(err).__name__}: {err}", provider=self.name
        )

    def _response(
        self,
        content: str,
        model: str,
        usage: Usage,
        latency_ms: float,
        extra: dict[str, Any],
        confidence: float | None = None,
    ) -> ModelResponse:
        """A response priced from `usage` (the usage breakdown and raw extras in metadata)."""
        return self.response(
            content,
            model_name=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=latency_ms,
            cost_usd=usage.cost(self.price),
            confidence_score=confidence,
            metadata={"usage": usage.as_dict(), "cost_known": self.price is not None, **extra},
        )


def connector_options(
    name: str,
    provider: ProviderSettings,
    context: BuildContext,
    *,
    example_model: str,
    key_required: bool = True,
) -> dict[str, Any]:
    """The keyword arguments of an SDK connector for `models.<name>`: model, key, endpoint, price."""
    if not provider.default_model:
        raise ConfigError(f"models.{name}: model is required (e.g. model: {example_model})")
    api_key, _ = resolve_api_key(provider)
    return {
        "model": provider.default_model,
        "api_key": api_key,
        "base_url": provider.base_url,
        "timeout": provider.timeout or context.settings.performance.request_timeout,
        "price": context.price(provider, provider.default_model),
        "params": provider.params,
        "missing_key": None if api_key or not key_required else missing_key_error(name, provider),
    }
