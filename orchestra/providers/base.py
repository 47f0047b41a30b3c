"""The one base class every provider implements.

class EchoConnector(BaseModelConnector):
    async def generate(self, request):
        return self.response(request.prompt, model_name="echo")
    async def validate_connection(self):
        return True
    def get_supported_models(self):
        return ["echo"]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from orchestra.types import ModelProvider, ModelRequest, ModelResponse


class BaseModelConnector(ABC):
    """A provider: turns a `ModelRequest` into a `ModelResponse`."""

    provider_type: ModelProvider = ModelProvider.CUSTOM

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.provider_type.value

    @abstractmethod
    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Answer one request; raise a `ProviderError` subclass on failure."""

    @abstractmethod
    async def validate_connection(self) -> bool:
        """True when the provider can be reached with the configured credentials."""

    @abstractmethod
    def get_supported_models(self) -> list[str]:
        """Model names this connector can serve."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """Text deltas, then the complete `ModelResponse`. By default: one delta, the whole answer."""
        response = await self.generate(request)
        yield response.content
        yield response

    def estimate_cost(self, request: ModelRequest) -> float | None:
        """The cost of answering `request`, if known without calling (None: unknown)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release network clients; the default has nothing to release."""

    def response(self, content: str, *, model_name: str, **fields: Any) -> ModelResponse:
        """A `ModelResponse` from this connector, with `tokens_used` filled from the parts."""
        fields.setdefault("tokens_used", fields.get("input_tokens", 0) + fields.get("output_tokens", 0))
        return ModelResponse(content=content, provider=self.name, model_name=model_name, **fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
