"""The fake provider servers, driven by the real openai, anthropic and google-genai SDKs over 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from orchestra.testing import SERVERS, FakeAnthropic, FakeGemini, FakeOpenAI, FakeServer, Fault

KEY = "test-key"
PROMPT = "one two three four"
REPLY_PIECES = ["echo:", " one", " two", " three", " four"]
ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ["openai", "anthropic", "gemini"]
Exc = type[BaseException] | tuple[type[BaseException], ...]

# google-genai 3.6 subclasses aiohttp.ClientSession, which aiohttp warns about on every new session
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


@dataclass
class Driver:
    """One provider's fake server and real async SDK client, behind the same two calls."""

    server: FakeServer
    client: Any
    call: Callable[[str], Awaitable[str]]
    stream: Callable[[str, list[str]], Awaitable[None]]
    auth_error: Exc
    rate_limit_error: Exc
    server_error: Exc
    timeout_error: Exc
    connection_error: Exc
    broken_stream_error: Exc


def openai_driver(server: FakeServer, api_key: str, timeout: float) -> Driver:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def call(prompt: str) -> str:
        response = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}]
        )
        return response.choices[0].message.content or ""

    async def stream(prompt: str, out: list[str]) -> None:
        chunks = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                out.append(chunk.choices[0].delta.content)

    return Driver(
        server,
        client,
        call,
        stream,
        auth_error=openai.AuthenticationError,
        rate_limit_error=openai.RateLimitError,
        server_error=openai.InternalServerError,
        timeout_error=openai.APITimeoutError,
        connection_error=openai.APIConnectionError,
        broken_stream_error=openai.APIConnectionError,
    )


def anthropic_driver(server: FakeServer, api_key: str, timeout: float) -> Driver:
    client = anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key=api_key, max_retries=0, timeout=timeout
    )
    messages: Callable[[str], list[Any]] = lambda prompt: [{"role": "user", "content": prompt}]  # noqa: E731

    async def call(prompt: str) -> str:
        response = await client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=messages(prompt)
        )
        return response.content[0].text

    async def stream(prompt: str, out: list[str]) -> None:
        async with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=messages(prompt)
        ) as events:
            async for text in events.text_stream:
                out.append(text)

    return Driver(
        server,
        client,
        call,
        stream,
        auth_error=anthropic.AuthenticationError,
        rate_limit_error=anthropic.RateLimitError,
        server_error=anthropic.InternalServerError,
        timeout_error=anthropic.APITimeoutError,
        connection_error=anthropic.APIConnectionError,
        # anthropic 2.14 lets the transport error of a broken SSE body through unwrapped
        broken_stream_error=(anthropic.APIConnectionError, httpx2.TransportError),
    )


def gemini_client(server: FakeServer, api_key: str = KEY, timeout: float = 5.0) -> genai.Client:
    options = types.HttpOptions(
        base_url=server.base_url,
        api_version="v1beta",
        timeout=int(timeout * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=api_key, vertexai=False, http_options=options)


def gemini_driver(server: FakeServer, api_key: str, timeout: float) -> Driver:
    client = gemini_client(server, api_key, timeout)

    async def call(prompt: str) -> str:
        response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents=prompt)
        return response.text or ""

    async def stream(prompt: str, out: list[str]) -> None:
        chunks = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt)
        async for chunk in chunks:
            out.append(chunk.text or "")

    # google-genai's async client uses aiohttp and lets its connection errors through
    return Driver(
        server,
        client,
        call,
        stream,
        auth_error=genai_errors.ClientError,
        rate_limit_error=genai_errors.ClientError,
        server_error=genai_errors.ServerError,
        timeout_error=TimeoutError,
        connection_error=aiohttp.ClientConnectionError,
        broken_stream_error=aiohttp.ClientPayloadError,
    )


DRIVERS = {"openai": openai_driver, "anthropic": anthropic_driver, "gemini": gemini_driver}


async def close_client(client: Any) -> None:
    if isinstance(client, genai.Client):
        await client.aio.aclose()
        client.close()
    else:
        await client.close()


@pytest.fixture
async def make_driver() -> AsyncIterator[Callable[..., Driver]]:
    """Build a started fake server and a real SDK client for it; both are closed at the end."""
    made: list[Driver] = []

    def build(provider: str, *, api_key: str = KEY, timeout: float = 5.0, **server_kwargs: Any) -> Driver:
        server = SERVERS[provider](api_key=KEY, **server_kwargs).start()
        driver = DRIVERS[provider](server, api_key, timeout)
        made.append(driver)
        return driver

    yield build
    for driver in made:
        await close_client(driver.client)
        driver.server.stop()


@pytest.fixture(params=PROVIDERS)
def driver(request: pytest.FixtureRequest, make_driver: Callable[..., Driver]) -> Driver:
    return make_driver(request.param)


def status_of(exc: BaseException) -> int:
    return getattr(exc, "status_code", None) or getattr(exc, "code", 0)


# ----- behaviour common to the three providers -----


async def test_normal_call_and_stream(driver: Driver) -> None:
    assert await driver.call(PROMPT) == f"echo: {PROMPT}"
    pieces: list[str] = []
    await driver.stream(PROMPT, pieces)
    assert pieces == REPLY_PIECES
    assert [call.status for call in driver.server.calls] == [200, 200]


async def test_wrong_key_is_an_authentication_error(
    make_driver: Callable[..., Driver], provider: str
) -> None:
    driver = make_driver(provider, api_key="wrong-key")
    with pytest.raises(driver.auth_error) as caught:
        await driver.call(PROMPT)
    assert status_of(caught.value) == 401
    assert driver.server.calls[-1].status == 401
    assert driver.server.calls[-1].json is not None


async def test_429_carries_retry_after(driver: Driver) -> None:
    driver.server.inject(Fault.status(429, retry_after="2"), Fault.status(429, retry_after="0.5"))
    with pytest.raises(driver.rate_limit_error) as caught:
        await driver.call(PROMPT)
    assert status_of(caught.value) == 429
    assert caught.value.response.headers["retry-after"] == "2"  # type: ignore[union-attr]
    with pytest.raises(driver.rate_limit_error) as caught:
        await driver.stream(PROMPT, [])
    assert caught.value.response.headers["retry-after"] == "0.5"  # type: ignore[union-attr]
    assert await driver.call(PROMPT) == f"echo: {PROMPT}"
    assert [call.status for call in driver.server.calls] == [429, 429, 200]


async def test_503_is_a_server_error(driver: Driver) -> None:
    driver.server.inject(Fault.status(503))
    with pytest.raises(driver.server_error) as caught:
        await driver.call(PROMPT)
    assert status_of(caught.value) == 503


async def test_custom_error_body(driver: Driver) -> None:
    driver.server.inject(Fault.status(500, body={"error": {"message": "custom", "code": 500}}))
    with pytest.raises(driver.server_error) as caught:
        await driver.call(PROMPT)
    assert "custom" in str(caught.value)


async def test_slow_trips_the_client_timeout(make_driver: Callable[..., Driver], provider: str) -> None:
    driver = make_driver(provider, timeout=0.5)
    driver.server.inject(Fault.slow(60.0), Fault.slow(60.0))
    with pytest.raises(driver.timeout_error):
        await driver.call(PROMPT)
    with pytest.raises(driver.timeout_error):
        await driver.stream(PROMPT, [])
    assert [call.status for call in driver.server.calls] == [0, 0]  # the client gave up first


async def test_malformed_json_raises(driver: Driver) -> None:
    # None of the three SDKs wraps invalid JSON in a 200 answer: they raise json.JSONDecodeError (a
    # ValueError); google-genai raises its UnknownApiResponseError (also a ValueError) for a stream.
    driver.server.inject(Fault.malformed(), Fault.malformed())
    with pytest.raises(ValueError):
        await driver.call(PROMPT)
    with pytest.raises(ValueError):
        await driver.stream(PROMPT, [])
    assert [call.status for call in driver.server.calls] == [200, 200]  # answered, not dropped


async def test_break_stream_raises_after_some_chunks(driver: Driver) -> None:
    driver.server.inject(Fault.break_stream(after_chunks=2))
    pieces: list[str] = []
    with pytest.raises(driver.broken_stream_error):
        await driver.stream(PROMPT, pieces)
    assert pieces == REPLY_PIECES[:2]
    assert driver.server.calls[-1].status == 200


async def test_break_stream_on_a_plain_call_disconnects(driver: Driver) -> None:
    driver.server.inject(Fault.break_stream())
    with pytest.raises(driver.connection_error):
        await driver.call(PROMPT)


async def test_disconnect_is_a_connection_error(driver: Driver) -> None:
    driver.server.inject(Fault.disconnect(), Fault.disconnect())
    with pytest.raises(driver.connection_error):
        await driver.call(PROMPT)
    with pytest.raises(driver.connection_error):
        await driver.stream(PROMPT, [])
    assert await driver.call(PROMPT) == f"echo: {PROMPT}"
    assert [call.status for call in driver.server.calls] == [0, 0, 200]


async def test_faults_are_consumed_in_order_and_reset_clears(driver: Driver) -> None:
    server = driver.server
    server.inject(Fault.status(503), Fault.status(429))
    with pytest.raises(driver.server_error):
        await driver.call(PROMPT)
    with pytest.raises(driver.rate_limit_error):
        await driver.call(PROMPT)
    assert await driver.call(PROMPT) == f"echo: {PROMPT}"
    assert len(server.calls) == 3
    server.inject(Fault.status(503))
    server.reset()
    assert server.calls == [] and server.requests == []
    assert await driver.call(PROMPT) == f"echo: {PROMPT}"
    assert len(server.calls) == 1


async def test_reply_function_and_latency(make_driver: Callable[..., Driver], provider: str) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # counted, not timed
        waits.append(seconds)

    driver = make_driver(provider, latency_s=0.15, reply=lambda prompt: prompt.upper(), sleep=sleep)
    assert await driver.call("shout this") == "SHOUT THIS"
    assert waits == [0.15]  # the server waited its latency once, before answering


async def test_a_reply_that_raises_is_a_server_error(
    make_driver: Callable[..., Driver], provider: str
) -> None:
    def reply(prompt: str) -> str:
        raise RuntimeError("boom")

    driver = make_driver(provider, reply=reply)
    with pytest.raises(driver.server_error) as caught:
        await driver.call(PROMPT)
    assert "boom" in str(caught.value)
    assert driver.server.calls[0].status == 500


async def test_api_key_none_accepts_any_key(provider: str) -> None:
    with SERVERS[provider](api_key=None) as server:
        driver = DRIVERS[provider](server, "any-key-at-all", 5.0)
        try:
            assert await driver.call("hi") == "echo: hi"
        finally:
            await close_client(driver.client)


# ----- OpenAI -----


@pytest.fixture
def oai(make_driver: Callable[..., Driver]) -> tuple[FakeServer, openai.AsyncOpenAI]:
    driver = make_driver("openai")
    return driver.server, driver.client


async def test_openai_usage_extras_and_logprobs(oai: tuple[FakeServer, openai.AsyncOpenAI]) -> None:
    server, client = oai
    server.usage_extras = {"cached_tokens": 3, "reasoning_tokens": 5}
    response = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "world"}],
            },
        ],
        logprobs=True,
    )
    assert response.model == "gpt-4o-mini"
    assert response.choices[0].message.content == "echo: hello\nworld"
    assert response.choices[0].finish_reason == "stop"
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens == 4 + 3  # words of system + user, plus the cached tokens
    assert usage.completion_tokens == 3 + 5  # reply words, plus the reasoning tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 3
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 5
    logprobs = response.choices[0].logprobs
    assert logprobs and logprobs.content
    assert [entry.token for entry in logprobs.content] == ["echo:", " hello", "\nworld"]
    assert {entry.logprob for entry in logprobs.content} == {-0.05}
    assert logprobs.content[1].bytes == list(b" hello")


async def test_openai_stream_usage(oai: tuple[FakeServer, openai.AsyncOpenAI]) -> None:
    server, client = oai
    chunks = [
        chunk
        async for chunk in await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    ]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"echo: {PROMPT}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (
        chunks[-1].usage and chunks[-1].usage.prompt_tokens == 4 and chunks[-1].usage.completion_tokens == 5
    )
    async with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    ) as s:
        final = await s.get_final_completion()
    assert final.choices[0].message.content == "echo: hi"
    assert len(server.calls) == 2


async def test_openai_models_endpoints_need_auth(oai: tuple[FakeServer, openai.AsyncOpenAI]) -> None:
    server, client = oai
    assert [model.id for model in (await client.models.list()).data] == list(FakeOpenAI.models)
    assert (await client.models.retrieve("meta-llama/Llama-3.1-8B")).id == "meta-llama/Llama-3.1-8B"
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.models.list()
    assert caught.value.code == "invalid_api_key"
    paths = [request.path for request in server.requests]
    assert paths == ["/v1/models", "/v1/models/meta-llama/Llama-3.1-8B", "/v1/models"]
    assert [request.status for request in server.requests] == [200, 200, 401]
    assert server.calls == []


async def test_refused_call_consumes_no_fault(oai: tuple[FakeServer, openai.AsyncOpenAI]) -> None:
    server, client = oai
    server.inject(Fault.status(503))
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="gpt-4o", messages=messages)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=messages)
    assert [call.status for call in server.calls] == [401, 503]


def test_openai_sync_client() -> None:
    with (
        FakeOpenAI() as server,
        openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
    ):
        response = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        assert response.choices[0].message.content == "echo: hi"
        assert server.calls[0].headers["authorization"] == f"Bearer {KEY}"


# ----- Anthropic -----


@pytest.fixture
def ant(make_driver: Callable[..., Driver]) -> tuple[FakeServer, anthropic.AsyncAnthropic]:
    driver = make_driver("anthropic")
    return driver.server, driver.client


async def test_anthropic_usage_extras_and_system_blocks(
    ant: tuple[FakeServer, anthropic.AsyncAnthropic],
) -> None:
    server, client = ant
    server.usage_extras = {"cache_read_input_tokens": 7, "cache_creation_input_tokens": 2}
    message = await client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        system=[{"type": "text", "text": "you are terse"}, {"type": "text", "text": "really"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello world"
    assert message.model == "claude-haiku-4-5"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == 6  # system 4 words + user 2; cache tokens are reported apart
    assert message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 7
    assert message.usage.cache_creation_input_tokens == 2


async def test_anthropic_stream_events_and_final_message(
    ant: tuple[FakeServer, anthropic.AsyncAnthropic],
) -> None:
    server, client = ant
    server.usage_extras = {"cache_read_input_tokens": 1}
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=64,
        system="be terse",
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert texts == REPLY_PIECES
    assert final.content[0].type == "text" and final.content[0].text == f"echo: {PROMPT}"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 5)
    assert final.usage.cache_read_input_tokens == 1
    raw = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    kinds = [event.type async for event in raw]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_anthropic_errors_use_its_format(ant: tuple[FakeServer, anthropic.AsyncAnthropic]) -> None:
    server, client = ant
    server.inject(Fault.status(529), Fault.status(429))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert overloaded.value.type == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert limited.value.type == "rate_limit_error"


async def test_anthropic_models_and_x_api_key(ant: tuple[FakeServer, anthropic.AsyncAnthropic]) -> None:
    server, client = ant
    assert [model.id for model in (await client.models.list()).data] == list(FakeAnthropic.models)
    assert (await client.models.retrieve("claude-x")).id == "claude-x"
    request = urllib.request.Request(f"{server.base_url}/v1/models", headers={"x-api-key": KEY})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: ASYNC210 - a one-off local call
        assert json.loads(response.read())["data"][0]["type"] == "model"
    assert len(server.requests) == 3 and server.calls == []


# ----- Gemini -----


@pytest.fixture
def gem(make_driver: Callable[..., Driver]) -> tuple[FakeServer, genai.Client]:
    driver = make_driver("gemini")
    return driver.server, driver.client


async def test_gemini_usage_extras_and_logprobs(gem: tuple[FakeServer, genai.Client]) -> None:
    server, client = gem
    server.usage_extras = {"cached_content_token_count": 3, "thoughts_token_count": 4}
    response = await client.aio.models.generate_content(
        model="gemini-2.5-pro",
        contents=[
            types.Content(role="user", parts=[types.Part(text="first question")]),
            types.Content(role="model", parts=[types.Part(text="first answer")]),
            types.Content(role="user", parts=[types.Part(text="hello"), types.Part(text="world")]),
        ],
        config=types.GenerateContentConfig(system_instruction="be terse", response_logprobs=True),
    )
    assert response.text == "echo: hello\nworld"
    assert response.model_version == "gemini-2.5-pro"
    candidate = response.candidates[0] if response.candidates else None
    assert candidate and candidate.finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 8 + 3  # system 2 + contents 6 words, cached tokens included
    assert usage.cached_content_token_count == 3
    assert usage.candidates_token_count == 3
    assert usage.thoughts_token_count == 4
    assert usage.total_token_count == 11 + 3 + 4
    assert candidate.avg_logprobs == -0.05
    assert candidate.logprobs_result and candidate.logprobs_result.chosen_candidates
    assert [c.token for c in candidate.logprobs_result.chosen_candidates] == ["echo:", " hello", "\nworld"]


async def test_gemini_stream_usage_on_last_chunk(gem: tuple[FakeServer, genai.Client]) -> None:
    server, client = gem
    chunks = [
        chunk async for chunk in await client.aio.models.generate_content_stream(model="g", contents=PROMPT)
    ]
    assert [chunk.text for chunk in chunks] == REPLY_PIECES
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.prompt_token_count == 4
    assert last.usage_metadata.candidates_token_count == 5
    assert server.calls[0].path == "/v1beta/models/g:streamGenerateContent"


async def test_gemini_error_status_names(gem: tuple[FakeServer, genai.Client]) -> None:
    server, client = gem
    server.inject(Fault.status(429), Fault.status(503))
    with pytest.raises(genai_errors.ClientError) as limited:
        await client.aio.models.generate_content(model="g", contents="hi")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    with pytest.raises(genai_errors.ServerError) as unavailable:
        await client.aio.models.generate_content(model="g", contents="hi")
    assert (unavailable.value.code, unavailable.value.status) == (503, "UNAVAILABLE")


def test_gemini_sync_client_and_models_get() -> None:
    # The sync client uses httpx2, not aiohttp: its errors differ, the wire format is the same.
    with FakeGemini() as server:
        client = gemini_client(server, timeout=0.3)
        try:
            assert client.models.generate_content(model="g", contents="hi there").text == "echo: hi there"
            pieces = [
                chunk.text for chunk in client.models.generate_content_stream(model="g", contents="a b")
            ]
            assert pieces == ["echo:", " a", " b"]
            assert client.models.get(model="gemini-2.5-flash").name == "models/gemini-2.5-flash"
            server.inject(Fault.status(401), Fault.slow(2.0))
            with pytest.raises(genai_errors.ClientError):
                client.models.generate_content(model="g", contents="hi")
            with pytest.raises(httpx2.TimeoutException):
                client.models.generate_content(model="g", contents="hi")
        finally:
            client.close()
        assert [request.status for request in server.requests] == [200, 200, 200, 401, 0]
        assert len(server.calls) == 4


def test_gemini_key_query_parameter() -> None:
    with FakeGemini() as server:
        body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
        url = f"{server.base_url}/v1beta/models/g:generateContent"
        request = urllib.request.Request(f"{url}?key={KEY}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["candidates"][0]["content"]["parts"][0]["text"] == "echo: hi"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5)
        assert caught.value.code == 401
        assert json.loads(caught.value.read())["error"]["status"] == "UNAUTHENTICATED"
        assert [call.status for call in server.calls] == [200, 401]


def test_unknown_route_is_recorded_not_counted() -> None:
    with FakeOpenAI() as server:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{server.base_url}/embeddings", timeout=5)
        assert caught.value.code in (404, 405)
        assert json.loads(caught.value.read())["error"]["type"] == "invalid_request_error"
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/embeddings")]
        assert server.calls == []


# ----- the command line -----


def test_command_line_server() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestra.testing", "openai", "--port", "0", "--latency", "0.01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:")
        root = line.removeprefix("READY ")
        with openai.OpenAI(base_url=f"{root}/v1", api_key="anything", max_retries=0, timeout=5) as client:
            response = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "ping"}]
            )
        assert response.choices[0].message.content == "echo: ping"
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert returncode == 0


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return request.param
