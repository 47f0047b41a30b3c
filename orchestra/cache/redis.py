"""The Redis response cache (the seed's REDIS_URL), for caches shared between machines.

cache = RedisCache("redis://127.0.0.1:6379/0")
"""

from __future__ import annotations

from orchestra.cache.base import ResponseCache
from orchestra.errors import ConfigError
from orchestra.types import ModelResponse

try:
    import redis.asyncio as aioredis
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ConfigError("the Redis cache needs redis: pip install 'orchestra[redis]'") from err

_PREFIX = "orchestra:response:"


class RedisCache(ResponseCache):
    def __init__(self, url: str) -> None:
        self.url = url
        self._client = aioredis.from_url(url)

    async def get(self, key: str) -> ModelResponse | None:
        value = await self._client.get(_PREFIX + key)
        return None if value is None else ModelResponse.model_validate_json(value)

    async def set(self, key: str, response: ModelResponse, ttl_s: float) -> None:
        await self._client.set(_PREFIX + key, response.model_dump_json(), px=max(int(ttl_s * 1000), 1))

    async def aclose(self) -> None:
        await self._client.aclose()
