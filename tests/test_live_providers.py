"""The live connectors through the real SDKs, against local servers speaking each wire format.

Nothing here leaves 127.0.0.1. The fakes inject 429s (with and without Retry-After), 5xx,
slow answers, refused connections, malformed bodies and broken streams.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import uuid

import pytest

from orchestra import (
    AuthenticationFailed,
    InsufficientResponses,
    InvalidRequest,
    MalformedResponse,
    Orchestra,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from orchestra.errors import BudgetExceeded, ConfigError, RateLimited
from orchestra.resilience import CircuitBreaker, shared_hold, shared_limiter
from orchestra.testing import FakeAnthropic, FakeGemini, FakeOpenAI, Fault
from orchestra.testing.fake_server import echo
from orchestra.tracking.reader import read_request_table
from tests.fake_clock import FakeClock

KEY = "test-key"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022", "google": "gemini-1.5-flash"}


@pytest.fixture(scope="module")
def servers():
    started = {
        "openai": FakeOpenAI(api_key=KEY),
        "anthropic": FakeAnthropic(api_key=KEY),
        "google": FakeGemini(api_key=KEY),
    }
    for server in started.values():
        server.start()
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def fakes(servers):
    for server in servers.values():
        server.reset()
        server.usage_extras = {}
        server.latency_s = 0.0
    return servers


def live_config(fakes, rules=None, providers=None, **performance) -> dict:
    # A timeout far past any answer on a loaded machine; the tests of timeouts set their own.
    models = {
        name: {"model": MODELS[name], "api_key": KEY, "base_url": fakes[name].base_url, "timeout": 60}
        for name in providers or MODELS
    }
    return {
        "models": models,
        "routing": {"rules": rules or [{"providers": list(models)}]},
        "performance": {"retry": {"initial_delay_s": 0.001, "max_delay_s": 0.01}, **performance},
    }


@pytest.fixture
async def build(tracking):
    """Orchestras whose SDK clients are closed on the test's own event loop."""
    created = []

    def make(config: dict) -> Orchestra:
        orch = Orchestra(config, tracking=tracking)
        created.append(orch)
        return orch

    yield make
    for orch in created:
        await orch.aclose()


@pytest.mark.parametrize("provider", list(MODELS))
async def test_each_connector_answers_with_usage_and_cost(fakes, build, provider):
    orch = build(live_config(fakes, providers=[provider]))
    result = await orch.process_request("name three primes", user_id="u1", system_prompt="be brief")
    metadata = result["metadata"]
    assert result["response"] == "echo: name three primes"
    assert metadata["providers_used"] == [provider]
    assert metadata["tokens"]["input"] > 0 and metadata["tokens"]["output"] > 0
    price = orch.prices.lookup(MODELS[provider])
    expected = price.cost(metadata["tokens"]["input"], metadata["tokens"]["output"])
    assert metadata["cost_usd"] == pytest.approx(expected)
    sent = fakes[provider].calls[-1].json
    system = {
        "openai": lambda: sent["messages"][0] == {"role": "system", "content": "be brief"},
        "anthropic": lambda: sent["system"] == "be brief",
        "google": lambda: sent["systemInstruction"]["parts"][0]["text"] == "be brief",
    }[provider]
    assert system()


async def test_openai_cached_and_reasoning_usage_is_priced(fakes, build):
    fakes["openai"].usage_extras = {"cached_tokens": 40, "reasoning_tokens": 30}
    orch = build(live_config(fakes, providers=["openai"]))
    result = await orch.process_request("one two three", user_id="u1")
    tokens = result["metadata"]["tokens"]
    price = orch.prices.lookup("gpt-4o-mini")
    expected = price.cost(tokens["input"], tokens["output"], cached_input_tokens=40)
    assert result["metadata"]["cost_usd"] == pytest.approx(expected)
    # "one two three" is 3 words (+40 cached); "echo: one two three" is 4 (+30 reasoning)
    assert tokens["input"] == 3 + 40 and tokens["output"] == 4 + 30


async def test_logprobs_become_confidence(fakes, build):
    config = live_config(fakes, providers=["openai"])
    config["models"]["openai"]["params"] = {"logprobs": True}
    orch = build(config)
    result = await orch.process_request("hello", user_id="u1")
    assert result["metadata"]["confidence"] == pytest.approx(math.exp(-0.05), rel=1e-3)


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize(
    ("fault", "retries_to_success"),
    [
        (Fault.status(429, retry_after="0.01"), 1),
        (Fault.status(429), 1),
        (Fault.status(500), 1),
        (Fault.status(503), 1),
        (Fault.malformed(), 1),
        (Fault.disconnect(), 1),
    ],
    ids=["429-retry-after", "429", "500", "503", "malformed", "disconnect"],
)
async def test_retryable_failures_are_retried(fakes, build, provider, fault, retries_to_success):
    fakes[provider].inject(fault)
    orch = build(live_config(fakes, providers=[provider]))
    result = await orch.process_request("hi", user_id="u1")
    assert result["response"] == "echo: hi"
    assert len(fakes[provider].calls) == 1 + retries_to_success
    assert result["metadata"]["calls"][0]["attempts"] == 2


async def test_retry_after_is_honoured(fakes, build):
    fakes["openai"].inject(Fault.status(429, retry_after="7"))
    orch = build(live_config(fakes, providers=["openai"]))
    clock = FakeClock()
    shared_hold(("openai", "openai", fakes["openai"].base_url), clock=clock, sleep=clock.sleep)
    await orch.process_request("hi", user_id="u1")
    assert [call.status for call in fakes["openai"].calls] == [429, 200]
    assert clock.sleeps == [7.0]  # the wait before the retry is the server's Retry-After


async def test_sdk_hidden_retries_are_off(fakes, build):
    fakes["anthropic"].inject(*[Fault.status(503)] * 3)
    orch = build(
        live_config(fakes, providers=["anthropic"], retry={"max_attempts": 3, "initial_delay_s": 0.001})
    )
    with pytest.raises(InsufficientResponses) as caught:
        await orch.process_request("hi", user_id="u1")
    assert len(fakes["anthropic"].calls) == 3  # exactly our three attempts, none of the SDK's
    assert caught.value.failures[0].error_type == "ProviderUnavailable"


async def test_timeout_then_retry(fakes, build):
    fakes["google"].inject(Fault.slow(60.0))  # far past the timeout, which is far past a normal answer
    config = live_config(fakes, providers=["google"])
    config["models"]["google"]["timeout"] = 1.0
    orch = build(config)
    result = await orch.process_request("hi", user_id="u1")
    assert result["response"] == "echo: hi" and len(fakes["google"].calls) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationFailed), (400, ProviderError), (404, ProviderError)],
)
async def test_non_retryable_errors_fail_over_at_once(fakes, build, status, error):
    fakes["openai"].inject(Fault.status(status))
    orch = build(live_config(fakes, providers=["openai", "anthropic"]))
    result = await orch.process_request("hi", user_id="u1")
    failed = result["metadata"]["providers_failed"][0]
    assert failed["provider"] == "openai" and failed["attempts"] == 1
    assert issubclass(error, ProviderError)
    assert result["metadata"]["answered_by"] == "anthropic" and len(fakes["openai"].calls) == 1


async def test_wrong_key_is_an_authentication_error(fakes, build):
    config = live_config(fakes, providers=["google"])
    config["models"]["google"]["api_key"] = "wrong"
    orch = build(config)
    with pytest.raises(InsufficientResponses) as caught:
        await orch.process_request("hi", user_id="u1")
    assert caught.value.failures[0].error_type == "AuthenticationFailed"
    assert "wrong" not in str(caught.value)


async def test_failover_order_follows_the_rule(fakes, build):
    fakes["openai"].inject(*[Fault.status(503)] * 3)
    fakes["anthropic"].inject(*[Fault.status(500)] * 3)
    orch = build(live_config(fakes, rules=[{"providers": ["openai", "anthropic", "google"]}]))
    result = await orch.process_request("hi", user_id="u1")
    metadata = result["metadata"]
    assert metadata["providers_called"] == ["openai", "anthropic", "google"]
    assert [f["provider"] for f in metadata["providers_failed"]] == ["openai", "anthropic"]
    assert metadata["answered_by"] == "google"


async def test_connection_refused_fails_over(fakes, build):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = live_config(fakes, providers=["openai", "anthropic"])
    config["models"]["openai"]["base_url"] = f"http://127.0.0.1:{closed_port}/v1"
    orch = build(config)
    result = await orch.process_request("hi", user_id="u1")
    assert result["metadata"]["providers_failed"][0]["error_type"] == ProviderUnavailable.__name__
    assert result["metadata"]["answered_by"] == "anthropic"


def limited_config(fakes, provider: str, name: str, **rate_limit) -> dict:
    """One provider under a fresh name (so a fresh process-wide limiter), rate-limited."""
    config = live_config(fakes, providers=[provider])
    config["models"] = {name: {**config["models"][provider], "type": provider, "rate_limit": rate_limit}}
    config["routing"]["rules"] = [{"providers": [name]}]
    return config


def manual_limiter_clock(fakes, provider: str, name: str, **limits) -> FakeClock:
    """A frozen clock for the endpoint's limiter (made here with `limits`, the config's, so the
    engine's guards share it): each admission's wait is exact and recorded."""
    clock = FakeClock(frozen=True)
    shared_limiter((name, provider, fakes[provider].base_url), clock=clock, sleep=clock.sleep, **limits)
    return clock


async def test_burst_never_exceeds_the_configured_rate(fakes, build):
    name = f"openai-{uuid.uuid4().hex[:8]}"
    limits = {"requests": 400, "per_seconds": 1.0, "max_concurrent": 50}
    clock = manual_limiter_clock(fakes, "openai", name, **limits)
    config = limited_config(fakes, "openai", name, **limits)
    peak = answered = 0

    def reply(prompt: str) -> str:  # called after the server's latency, the request still open
        nonlocal peak, answered
        peak = max(peak, len(fakes["openai"].calls) - answered)
        answered += 1
        return f"echo: {prompt}"

    fakes["openai"].reply = reply
    fakes["openai"].latency_s = 0.01  # calls overlap at the server
    try:
        orch = build(config)
        await asyncio.gather(*(orch.process_request(f"q{i}", user_id="u1") for i in range(1000)))
    finally:
        fakes["openai"].reply = echo
    assert len(fakes["openai"].calls) == 1000
    # 400 admitted at once, then 400 one window later, then 200 two windows later
    assert sorted(clock.sleeps) == [1.0] * 400 + [2.0] * 200
    assert peak <= 50  # requests open at the server at once never exceed max_concurrent


async def test_one_limiter_is_shared_across_instances(fakes, build):
    name = f"anthropic-{uuid.uuid4().hex[:8]}"
    clock = manual_limiter_clock(fakes, "anthropic", name, requests=20, per_seconds=1.0)
    config = limited_config(fakes, "anthropic", name, requests=20, per_seconds=1.0)
    first, second = build(config), build(config)
    assert first.guard_for(name).limiter is second.guard_for(name).limiter
    other = build(limited_config(fakes, "anthropic", name, requests=50, per_seconds=1.0))
    with pytest.raises(
        ConfigError, match=r"already has a rate limiter .* requests=20.* asks for requests=50"
    ):
        other.guard_for(name)  # another limit on the same endpoint: said, not applied behind its users' backs
    await asyncio.gather(
        *(first.process_request(f"a{i}", user_id="u1") for i in range(30)),
        *(second.process_request(f"b{i}", user_id="u1") for i in range(30)),
    )
    assert len(fakes["anthropic"].calls) == 60
    # 60 calls from two instances share 20 per window: 20 now, 20 after 1 s, 20 after 2 s
    assert sorted(clock.sleeps) == [1.0] * 20 + [2.0] * 20


async def test_cooldown_skips_a_failing_provider_then_probes_and_recovers(fakes, build):
    config = live_config(fakes, providers=["openai", "anthropic"], retry={"max_attempts": 1})
    orch = build(config)
    clock = FakeClock()
    orch.guard_for("openai").breaker = CircuitBreaker(
        "openai", failure_threshold=2, cooldown_s=30, clock=clock
    )
    fakes["openai"].inject(Fault.status(503), Fault.status(503))
    for _ in range(2):
        assert (await orch.process_request("hi", user_id="u1"))["metadata"]["answered_by"] == "anthropic"
    cooled = await orch.process_request("hi", user_id="u1")
    assert cooled["metadata"]["providers_failed"][0]["error_type"] == "ProviderCoolingDown"
    assert len(fakes["openai"].calls) == 2  # skipped without a call while cooling down
    clock.now += 30
    recovered = await orch.process_request("hi", user_id="u1")  # the probe succeeds
    assert recovered["metadata"]["answered_by"] == "openai"
    assert orch.guard_for("openai").breaker.state == "closed"


async def test_provider_budget_refuses_before_the_call(fakes, build, tracking):
    config = live_config(fakes, providers=["openai"])
    config["models"]["openai"]["budget_usd"] = 0.000001
    orch = build(config)
    with pytest.raises(BudgetExceeded, match="would be exceeded"):
        await orch.process_request("hi", user_id="u1", max_tokens=100)
    assert fakes["openai"].calls == []
    await orch.flush()
    table = read_request_table(tracking, orch.tracker.run_id(orch.current_run()))
    assert table["error_type"].to_list() == ["BudgetExceeded"]


async def test_run_budget_stops_a_run_when_spent(fakes, build):
    orch = build(live_config(fakes, providers=["openai"], run_budget_usd=0.00005))
    answered = refused = 0
    async with orch.run("budgeted"):
        for i in range(50):
            try:
                await orch.process_request(f"question number {i}", user_id="u1", max_tokens=50)
                answered += 1
            except BudgetExceeded:
                refused += 1
    assert answered > 0 and refused > 0
    budget = next(iter(orch._run_budgets.values()))
    assert budget.spent_usd <= 0.00005


async def test_every_request_is_logged_including_failures(fakes, build, tracking):
    orch = build(live_config(fakes, providers=["openai"], retry={"max_attempts": 1}))
    fakes["openai"].inject(Fault.status(503), Fault.status(401))
    async with orch.run("all-logged") as scope:
        outcomes = await asyncio.gather(
            *(orch.process_request(f"p{i}", user_id="u1") for i in range(5)), return_exceptions=True
        )
    await orch.flush()
    assert sum(isinstance(o, InsufficientResponses) for o in outcomes) == 2
    table = read_request_table(tracking, scope.run_id)
    assert table.height == 5
    assert sorted(table["status"].to_list()) == ["error", "error", "ok", "ok", "ok"]
    errors = [json.loads(c)[0]["error_type"] for c in table.filter(table["status"] == "error")["calls_json"]]
    assert sorted(errors) == ["AuthenticationFailed", "ProviderUnavailable"]


@pytest.mark.parametrize("provider", list(MODELS))
async def test_streaming_yields_deltas_and_logs_once(fakes, build, tracking, provider):
    orch = build(live_config(fakes, providers=[provider]))
    async with orch.run("stream") as scope:
        stream = await orch.process_request_stream("count one two three four", user_id="u1")
        deltas = [delta async for delta in stream]
    await orch.flush()
    assert len(deltas) > 1 and "".join(deltas) == "echo: count one two three four"
    assert stream.metadata["tokens"]["output"] > 0 and stream.metadata["answered_by"] == provider
    table = read_request_table(tracking, scope.run_id)
    assert table.height == 1 and table["response"][0] == "".join(deltas)


@pytest.mark.parametrize("provider", list(MODELS))
async def test_a_stream_that_breaks_midway_is_logged_incomplete(fakes, build, tracking, provider):
    fakes[provider].inject(Fault.break_stream(after_chunks=2))
    orch = build(live_config(fakes, providers=[provider]))
    async with orch.run("broken") as scope:
        stream = await orch.process_request_stream("alpha beta gamma delta epsilon", user_id="u1")
        received = []
        with pytest.raises(ProviderError):
            async for delta in stream:
                received.append(delta)
    await orch.flush()
    assert received  # some text arrived before the break
    row = read_request_table(tracking, scope.run_id).row(0, named=True)
    assert row["status"] == "error" and row["response"] == "".join(received)


async def test_a_stream_closed_early_is_logged_once(fakes, build, tracking):
    orch = build(live_config(fakes, providers=["openai"]))
    async with orch.run("closed") as scope:
        stream = await orch.process_request_stream("one two three four five six", user_id="u1")
        async for _ in stream:
            break
        await stream.aclose()
    await orch.flush()
    table = read_request_table(tracking, scope.run_id)
    assert table.height == 1 and table["error_type"][0] == "StreamClosed"


async def test_stream_fails_over_before_the_first_delta(fakes, build):
    fakes["openai"].inject(*[Fault.status(503)] * 3)
    orch = build(live_config(fakes, providers=["openai", "anthropic"]))
    stream = await orch.process_request_stream("hello there", user_id="u1")
    result = await stream.collect()
    assert result["response"] == "echo: hello there" and result["metadata"]["answered_by"] == "anthropic"


async def test_stream_needs_a_single_provider_route(fakes, build):
    orch = build(live_config(fakes))
    with pytest.raises(InvalidRequest, match="single-provider"):
        await orch.process_request_stream("hi", user_id="u1", require_consensus=True)


async def test_check_reports_each_provider(fakes, tmp_path, monkeypatch):
    from orchestra.app.check import check_connections, render

    config = live_config(fakes)
    config["models"]["anthropic"]["api_key"] = "wrong"
    del config["models"]["google"]["api_key"]
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    statuses = {s.provider: s for s in await check_connections(str(path))}
    assert statuses["openai"].ok
    assert not statuses["anthropic"].ok and "AuthenticationFailed" in statuses["anthropic"].detail
    assert not statuses["google"].ok and "GOOGLE_API_KEY" in statuses["google"].detail
    table = render(list(statuses.values()))
    assert "FAIL: set GOOGLE_API_KEY or GEMINI_API_KEY" in table


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.status(429), RateLimited),
        (Fault.status(503), ProviderUnavailable),
        (Fault.malformed(), MalformedResponse),
        (Fault.slow(60.0), ProviderTimeout),
        (Fault.disconnect(), ProviderUnavailable),
        (Fault.status(401), AuthenticationFailed),
    ],
)
@pytest.mark.parametrize("provider", list(MODELS))
async def test_every_sdk_failure_maps_to_an_orchestra_error(fakes, build, provider, fault, error):
    from orchestra.types import ModelRequest

    fakes[provider].inject(fault)
    config = live_config(fakes, providers=[provider])
    # only the slow fault may time out: 1 s is far below its 60 s and far above a normal answer
    config["models"][provider]["timeout"] = 1.0 if fault.kind == "slow" else 10.0
    connector = build(config).model_registry.get(provider)
    with pytest.raises(error):
        await connector.generate(ModelRequest(prompt="hi"))
