"""An exact-match response cache: (provider, model, request parameters) -> response.

key = cache_key("openai", connector, request)
await cache.set(key, response, ttl_s=3600)
await cache.get(key)
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod

from orchestra.providers.base import BaseModelConnector
from orchestra.types import ModelRequest, ModelResponse


def cache_key(provider: str, connector: BaseModelConnector, request: ModelRequest) -> str:
    """A stable hash of who answers (provider, type, endpoint, model) and everything asked."""
    identity = {
        "provider": provider,
        "type": connector.provider_type.value,
        "base_url": getattr(connector, "base_url", None),
        "models": connector.get_supported_models(),
        "params": getattr(connector, "params", None),
        "request": request.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache(ABC):
    @abstractmethod
    async def get(self, key: str) -> ModelResponse | None:
        """The cached response, or None when absent or expired."""

    @abstractmethod
    async def set(self, key: str, response: ModelResponse, ttl_s: float) -> None:
        """Store `response` for `ttl_s` seconds."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""
