"""Retry-After through the real SDKs and the fake servers: one hold per endpoint shared by every
request, retry and instance; capped; cleared by a success; unusable values fall back to the
backoff with one warning. Waits go through a manual clock: the tests count, they do not time."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from orchestra import InsufficientResponses, Orchestra
from orchestra.errors import RateLimited
from orchestra.providers.http_errors import ABSURD_RETRY_AFTER_S, retry_after_seconds
from orchestra.resilience import RetryAfterHold, shared_hold
from orchestra.testing import FakeAnthropic, FakeGemini, FakeOpenAI, Fault
from orchestra.tracking.settings import TrackingSettings
from tests.fake_clock import FakeClock

KEY = "test-key"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022", "google": "gemini-1.5-flash"}
SERVERS = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "google": FakeGemini}
FAST_BACKOFF = {"initial_delay_s": 0.001, "max_delay_s": 0.01}


@pytest.fixture(scope="module")
def servers():
    started = {kind: server(api_key=KEY).start() for kind, server in SERVERS.items()}
    yield started
    for server in started.values():
        server.stop()


class Endpoint:
    """Orchestras over one provider (a fresh endpoint name per test), and its hold's clock."""

    def __init__(self, server, kind: str, *, frozen: bool = False, **retry) -> None:
        self.server = server
        self.kind = kind
        self.name = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.retry = {**FAST_BACKOFF, **retry}
        self.clock = FakeClock(frozen=frozen)
        self.hold = shared_hold((self.name, kind, server.base_url), clock=self.clock, sleep=self.clock.sleep)
        self.created: list[Orchestra] = []

    def orchestra(self) -> Orchestra:
        config = {
            "models": {
                self.name: {
                    "type": self.kind,
                    "model": MODELS[self.kind],
                    "api_key": KEY,
                    "base_url": self.server.base_url,
                    "timeout": 10,
                }
            },
            "routing": {"rules": [{"providers": [self.name]}]},
            "performance": {"retry": self.retry, "request_timeout": 600},
        }
        orch = Orchestra(config, tracking=TrackingSettings(enabled=False))
        self.created.append(orch)
        return orch

    async def close(self) -> None:
        for orch in self.created:
            await orch.aclose()


@pytest.fixture
async def endpoint(servers):
    made: list[Endpoint] = []

    def make(kind: str = "openai", **options) -> Endpoint:
        servers[kind].reset()
        made.append(Endpoint(servers[kind], kind, **options))
        return made[-1]

    yield make
    for one in made:
        await one.close()


@pytest.mark.parametrize("kind", list(MODELS))
async def test_the_retry_waits_the_retry_after_through_the_hold(endpoint, kind):
    api = endpoint(kind)
    api.server.inject(Fault.status(429, retry_after="30"))
    result = await api.orchestra().process_request("hi", user_id="u1")
    assert result["response"] == "echo: hi"
    assert api.clock.sleeps == [30.0] and len(api.server.calls) == 2
    assert result["metadata"]["calls"][0]["attempts"] == 2


async def test_one_hold_is_shared_by_every_request_and_instance(endpoint):
    api = endpoint(max_attempts=1)
    first, second = api.orchestra(), api.orchestra()
    assert first.guard_for(api.name).hold is second.guard_for(api.name).hold is api.hold
    api.server.inject(Fault.status(429, retry_after="20"))
    with pytest.raises(InsufficientResponses):
        await first.process_request("one", user_id="u1")  # no retry: the hold is set all the same
    answers = await asyncio.gather(
        second.process_request("two", user_id="u1"), first.process_request("three", user_id="u1")
    )
    assert [a["response"] for a in answers] == ["echo: two", "echo: three"]
    # neither called before the hold was over (the first to wait moves the manual clock on)
    assert api.clock.sleeps[0] == 20.0 and api.clock.now >= 1000.0 + 20.0
    assert [call.status for call in api.server.calls] == [429, 200, 200]


async def test_a_success_clears_the_hold(endpoint):
    api = endpoint(max_attempts=1, frozen=True)  # time stands still: only a success ends the hold
    orch = api.orchestra()
    api.server.inject(Fault.status(429, retry_after="20"))
    with pytest.raises(InsufficientResponses):
        await orch.process_request("one", user_id="u1")
    await orch.process_request("two", user_id="u1")  # waits 20 s (clock frozen), then succeeds
    assert api.hold.remaining() == 0.0
    await orch.process_request("three", user_id="u1")
    assert api.clock.sleeps == [20.0]


async def test_a_long_retry_after_is_capped(endpoint):
    api = endpoint(max_retry_after_s=45)
    api.server.inject(Fault.status(429, retry_after="3600"))
    await api.orchestra().process_request("hi", user_id="u1")
    assert api.clock.sleeps == [45.0]


async def test_the_default_cap_is_60_seconds(endpoint):
    api = endpoint()
    api.server.inject(Fault.status(503, retry_after="600"))
    await api.orchestra().process_request("hi", user_id="u1")
    assert api.clock.sleeps == [60.0]


async def test_a_hold_past_the_deadline_fails_at_once_without_a_call(endpoint):
    api = endpoint(max_attempts=1)
    orch = api.orchestra()
    api.server.inject(Fault.status(429, retry_after="50"))
    with pytest.raises(InsufficientResponses):
        await orch.process_request("one", user_id="u1")
    with pytest.raises(InsufficientResponses) as caught:
        await orch.process_request("two", user_id="u1", timeout=5)
    assert caught.value.failures[0].error_type == RateLimited.__name__
    assert "Retry-After" in caught.value.failures[0].message
    assert len(api.server.calls) == 1 and api.clock.sleeps == []


@pytest.mark.parametrize("value", ["soon", "inf", "nan", "-5", "Wed, 21 Oct 2099 07:28:00 GMT", "1e9"])
async def test_an_unusable_retry_after_falls_back_to_the_backoff_with_one_warning(endpoint, caplog, value):
    api = endpoint(max_attempts=4)
    api.server.inject(*[Fault.status(429, retry_after=value)] * 3)
    with caplog.at_level(logging.WARNING, logger="orchestra"):
        result = await api.orchestra().process_request("hi", user_id="u1")
    assert result["response"] == "echo: hi" and len(api.server.calls) == 4
    assert len(api.clock.sleeps) == 3 and all(0 <= s <= 0.01 for s in api.clock.sleeps)  # the backoff
    warnings = [r for r in caplog.records if "cannot be honoured" in r.getMessage()]
    assert len(warnings) == 1 and repr(value) in warnings[0].getMessage()


@pytest.mark.parametrize("kind", ["anthropic", "google"])
async def test_unusable_values_fall_back_for_every_sdk(endpoint, kind):
    api = endpoint(kind)
    api.server.inject(Fault.status(429, retry_after="soon"))
    await api.orchestra().process_request("hi", user_id="u1")
    assert len(api.clock.sleeps) == 1 and api.clock.sleeps[0] <= 0.01


async def test_a_stream_waits_for_the_hold_too(endpoint):
    api = endpoint()
    api.server.inject(Fault.status(429, retry_after="12"))
    stream = await api.orchestra().process_request_stream("one two three", user_id="u1")
    result = await stream.collect()
    assert result["response"] == "echo: one two three" and api.clock.sleeps == [12.0]


def test_retry_after_parsing_keeps_only_usable_waits():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": str(ABSURD_RETRY_AFTER_S)}) == ABSURD_RETRY_AFTER_S
    for unusable in ("soon", "inf", "-inf", "nan", "-1", "Wed, 21 Oct 2099 07:28:00 GMT", "", "1e400"):
        assert retry_after_seconds({"retry-after": unusable}) is None, unusable
    assert retry_after_seconds({"retry-after-ms": "later"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


def test_the_hold_caps_extends_and_clears():
    clock = FakeClock()
    hold = RetryAfterHold("p", max_retry_after_s=10, clock=clock, sleep=clock.sleep)
    hold.note(RateLimited("429", provider="p", retry_after=4))
    hold.note(RateLimited("429", provider="p", retry_after=99))  # capped at 10
    hold.note(RateLimited("429", provider="p", retry_after=2))  # never shortens the hold
    assert hold.remaining() == 10
    clock.now += 7
    assert hold.remaining() == 3
    hold.clear()
    assert hold.remaining() == 0
