"""The response cache: SQLite on disk and a real Redis server; hits are free and marked."""

from __future__ import annotations

import asyncio

import pytest

from orchestra import FunctionConnector, ModelRequest, ModelResponse
from orchestra.cache import SQLiteCache, cache_key
from orchestra.tracking.reader import read_request_table


def response(text: str = "cached answer") -> ModelResponse:
    return ModelResponse(
        content=text, provider="p", model_name="m", input_tokens=3, output_tokens=2, cost_usd=0.5
    )


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return {"cache_backend": "sqlite", "cache_path": str(tmp_path / "cache.sqlite")}
    return {"cache_backend": "redis", "redis_url": request.getfixturevalue("redis_url")}


async def test_sqlite_cache_round_trip_and_ttl(tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    await cache.set("k", response(), ttl_s=60)
    assert (await cache.get("k")).content == "cached answer"
    await cache.set("old", response(), ttl_s=0.01)
    await asyncio.sleep(0.03)
    assert await cache.get("old") is None
    assert cache.purge_expired() == 1
    await cache.aclose()
    reopened = SQLiteCache(tmp_path / "c.sqlite")  # on disk: survives a restart
    assert (await reopened.get("k")).content == "cached answer"
    await reopened.aclose()


async def test_redis_cache_round_trip_and_ttl(redis_url):
    from orchestra.cache.redis import RedisCache

    cache = RedisCache(redis_url)
    await cache.set("k", response(), ttl_s=60)
    assert (await cache.get("k")).cost_usd == 0.5
    await cache.set("short", response(), ttl_s=0.05)
    await asyncio.sleep(0.15)
    assert await cache.get("short") is None
    await cache.aclose()


def test_cache_key_covers_provider_model_and_every_request_parameter():
    connector = FunctionConnector("a", model_name="m1")
    base = ModelRequest(prompt="hi", temperature=0.2)
    keys = {
        cache_key("a", connector, base),
        cache_key("b", connector, base),
        cache_key("a", FunctionConnector("a", model_name="m2"), base),
        cache_key("a", connector, base.model_copy(update={"temperature": 0.3})),
        cache_key("a", connector, base.model_copy(update={"system_prompt": "be brief"})),
        cache_key("a", connector, base.model_copy(update={"model_specific_params": {"top_p": 0.9}})),
    }
    assert len(keys) == 6
    assert cache_key("a", connector, base) == cache_key(
        "a", connector, ModelRequest(prompt="hi", temperature=0.2)
    )


async def test_repeated_request_is_served_from_cache_free_and_logged(make_orchestra, tracking, backend):
    connector = FunctionConnector("a", lambda r: f"answer to {r.prompt}", cost_per_call=0.25)
    orch = make_orchestra(
        {"a": connector}, performance={"enable_response_caching": True, "cache_ttl": 60, **backend}
    )
    async with orch.run("cached") as scope:
        first = await orch.process_request("same question", user_id="u1")
        second = await orch.process_request("same question", user_id="u1")
        other = await orch.process_request("another question", user_id="u1")
    await orch.flush()
    assert connector.calls == 2
    assert first["metadata"]["cache_hit"] is False and first["metadata"]["cost_usd"] == 0.25
    assert second["metadata"]["cache_hit"] is True and second["metadata"]["cost_usd"] == 0.0
    assert second["response"] == first["response"] and other["metadata"]["cache_hit"] is False
    table = read_request_table(tracking, scope.run_id)
    hit = table.filter(table["request_id"] == second["metadata"]["request_id"]).row(0, named=True)
    assert hit["cost_usd"] == 0.0 and '"cache_hit": true' in hit["calls_json"]
    await orch.aclose()


def test_caching_off_by_default(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a")})
    assert orch.cache is None
