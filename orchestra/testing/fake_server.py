"""The shared base of the fake provider servers: an aiohttp app on 127.0.0.1, faults, request recording.

with FakeOpenAI(api_key="test-key") as server:
    server.inject(Fault.status(429, retry_after="2"))
    OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)  # first call -> RateLimitError

A subclass speaks one provider's wire format: it adds its routes, checks its auth header, formats its errors,
and turns an `Exchange` (what was asked, what is answered) into a JSON answer or a stream of SSE events.
Each model call consumes the next injected `Fault`; with none queued it is answered normally. A call
without the right API key is answered 401 and consumes no fault.

Token counts: the input words are the uncached input and the reply words the visible output; the
`usage_extras` (cached, reasoning, ...) are added on top the way each provider reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from aiohttp import web

from orchestra.testing._wire import count_words, dumps, split_pieces

FaultKind = Literal["status", "slow", "malformed", "disconnect", "break_stream"]
Reply = Callable[[str], str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_API_KEY = "test-key"
_MAX_BODY = 256 * 1024 * 1024
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_MESSAGES = {
    400: "Invalid request.",
    401: "Invalid API key.",
    403: "Permission denied.",
    404: "Not found.",
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    503: "Service unavailable.",
    529: "Overloaded.",
}


def echo(prompt: str) -> str:
    """The default reply. Example: ``echo("hi") == "echo: hi"``."""
    return f"echo: {prompt}"


@dataclass(frozen=True)
class Fault:
    """One misbehaviour, used by the next model call. Example: ``server.inject(Fault.status(503))``."""

    kind: FaultKind
    status_code: int = 200
    retry_after: str | None = None
    body: Any = None
    delay_s: float = 0.0
    after_chunks: int = 0

    @classmethod
    def status(cls, code: int, retry_after: str | float | None = None, body: Any = None) -> Fault:
        """Answer `code` with the provider's error JSON (or `body`: a dict, or a str sent verbatim).

        Fault.status(429, retry_after="2")   # also sends `Retry-After: 2`
        """
        return cls(
            "status",
            status_code=code,
            retry_after=None if retry_after is None else str(retry_after),
            body=body,
        )

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Wait `delay_s`, then answer normally (a client timeout fires). Example: ``Fault.slow(5.0)``."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def malformed(cls) -> Fault:
        """Status 200 with a body that is not valid JSON. Example: ``Fault.malformed()``.

        A streaming call gets a normal event stream whose first event's data is truncated JSON.
        """
        return cls("malformed")

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without any response. Example: ``Fault.disconnect()``."""
        return cls("disconnect")

    @classmethod
    def break_stream(cls, after_chunks: int = 2) -> Fault:
        """Stream `after_chunks` content chunks, then drop the connection (no final event).

        Fault.break_stream(after_chunks=1)   # a non-streaming call is disconnected instead
        """
        return cls("break_stream", after_chunks=after_chunks)


@dataclass
class RecordedRequest:
    """One request the fake received. Example: ``server.requests[0].json["model"]``.

    `headers` has lower-case names; `path` has no query string; `status` is the status answered, 0 when
    no response was sent (a `disconnect`, or a client that gave up during a `slow` answer).
    """

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    received_at: float
    status: int = 0


_RECORD = web.RequestKey("orchestra_testing_record", RecordedRequest)
_DROPPED = web.RequestKey("orchestra_testing_dropped", bool)


@dataclass
class Exchange:
    """One model call: what was asked, and the reply. Example: ``Exchange("gpt-4o", "hi", 1, text="hi")``."""

    model: str
    prompt: str
    input_words: int
    body: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    id: str = ""
    created: int = 0

    @property
    def pieces(self) -> list[str]:
        """The reply cut into stream pieces, one per word."""
        return split_pieces(self.text)

    @property
    def output_words(self) -> int:
        """Words in the reply, at least 1."""
        return max(1, count_words(self.text))


class FakeServer:
    """An aiohttp server in a background thread speaking one provider's API; subclass per provider.

    server = FakeOpenAI(api_key="test-key", latency_s=0.0, reply=lambda prompt: f"echo: {prompt}").start()
    """

    base_path: ClassVar[str] = ""
    """Appended to the root URL to make `base_url`."""
    id_prefix: ClassVar[str] = "fake-"
    malformed_body: ClassVar[str] = '{"id": "x", "choices": ['
    malformed_event: ClassVar[bytes] = b'data: {"id": "x", "choices": [\n\n'
    break_grace_s: ClassVar[float] = 0.05
    """How long a broken stream stays open after its last chunk, so the client reads the chunks first."""

    def __init__(
        self,
        api_key: str | None = DEFAULT_API_KEY,
        latency_s: float = 0.0,
        reply: Reply | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api_key = api_key
        self.latency_s = latency_s
        self.sleep = sleep
        """How the server waits its latency and a slow fault's delay (a test may record them)."""
        self.reply: Reply = reply or echo
        self.usage_extras: dict[str, int] = {}
        self.host = host
        self._wanted_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._calls: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----

    def start(self) -> Self:
        """Serve from a background thread; return once listening. Example: ``s = FakeGemini().start()``."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run_loop, args=(loop, ready, failure), name=f"{type(self).__name__}", daemon=True
        )
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice. Example: ``server.stop()``."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def _run_loop(
        self, loop: asyncio.AbstractEventLoop, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start_async())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def start_async(self) -> Self:
        """Serve on the running event loop (own process). Example: ``await server.start_async()``."""
        app = web.Application(middlewares=[self._recording_middleware()], client_max_size=_MAX_BODY)
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._wanted_port, backlog=2048)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        return self

    async def stop_async(self) -> None:
        """Stop serving on the running event loop. Example: ``await server.stop_async()``."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port listened on (chosen by the OS when 0 was asked)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url`. Example: ``OpenAI(base_url=server.base_url)``."""
        return f"http://{self.host}:{self.port}{self.base_path}"

    # ----- faults and recording -----

    def inject(self, *faults: Fault) -> None:
        """Queue faults, first in first out; each model call takes one. Example: ``inject(Fault.slow(2))``."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received, model calls and others, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> list[RecordedRequest]:
        """A copy of the model-call requests only (streaming or not, failed ones too)."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        """Forget queued faults and recorded requests. Example: ``server.reset()``."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._calls.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _recording_middleware(self) -> Any:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            received_at = time.monotonic()
            raw = await request.read() if request.body_exists else b""
            entry = RecordedRequest(
                request.method,
                request.path,
                {name.lower(): value for name, value in request.headers.items()},
                _parse_object(raw),
                received_at,
            )
            with self._lock:
                self._requests.append(entry)
            request[_RECORD] = entry
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = self._error_response(exc.status, exc.reason)
            except Exception as exc:  # e.g. a `reply` that raises: answered as the provider's 500
                response = self._error_response(500, f"{type(exc).__name__}: {exc}")
            if not entry.status and not request.get(_DROPPED):
                entry.status = response.status
            return response

        return record

    # ----- model calls -----

    async def _model_call(self, request: web.Request, *, stream: bool | None = None) -> web.StreamResponse:
        """Answer one model call: auth, then the next fault or a normal answer.

        `stream=None` reads ``"stream": true`` from the JSON body.
        """
        entry: RecordedRequest = request[_RECORD]
        with self._lock:
            self._calls.append(entry)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        body = entry.json
        if body is None:
            return self._error_response(400, "The request body is not a JSON object.")
        if stream is None:
            stream = body.get("stream") is True
        fault = self._next_fault()
        if self.latency_s > 0:
            await self.sleep(self.latency_s)
        if fault is None:
            return await self._answer(request, body, stream)
        if fault.kind == "status":
            return self._error_response(fault.status_code, retry_after=fault.retry_after, body=fault.body)
        if fault.kind == "slow":
            await self.sleep(fault.delay_s)
            return await self._answer(request, body, stream)
        if fault.kind == "malformed":
            return await self._malformed(request, stream)
        if fault.kind == "break_stream" and stream:
            return await self._answer(request, body, stream, break_after=fault.after_chunks)
        return self._drop(request)

    async def _answer(
        self, request: web.Request, body: dict[str, Any], stream: bool, break_after: int | None = None
    ) -> web.StreamResponse:
        exchange = self._exchange(request, body)
        exchange.id = f"{self.id_prefix}{next(self._ids)}"
        exchange.created = int(time.time())
        exchange.text = self.reply(exchange.prompt)
        if not stream:
            return self._json_response(200, self._completion(exchange))
        response = await self._open_stream(request)
        for event in self._stream_head(exchange):
            await response.write(event)
        pieces = exchange.pieces
        count = len(pieces) if break_after is None else min(break_after, len(pieces))
        for index in range(count):
            last = break_after is None and index == len(pieces) - 1
            await response.write(self._stream_chunk(exchange, index, pieces[index], last))
        if break_after is not None:
            await asyncio.sleep(self.break_grace_s)  # an aiohttp client drops data still unread at the break
            self._drop(request)
            return response
        for event in self._stream_tail(exchange):
            await response.write(event)
        await response.write_eof()
        return response

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        request[_RECORD].status = 200
        await response.prepare(request)
        return response

    async def _malformed(self, request: web.Request, stream: bool) -> web.StreamResponse:
        if not stream:
            return web.Response(status=200, text=self.malformed_body, content_type="application/json")
        response = await self._open_stream(request)
        await response.write(self.malformed_event)
        await response.write_eof()
        return response

    def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection; aiohttp's later attempt to answer finds it closed."""
        request[_DROPPED] = True
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=200)

    # ----- model listing -----

    async def _list_models(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        page = self._model_page([self._model_info(name) for name in self.models])
        return denied or self._json_response(200, page)

    async def _get_model(self, request: web.Request) -> web.Response:
        """GET of one model; the route names the model `{model}`."""
        denied = self._check_auth(request)
        return denied or self._json_response(200, self._model_info(request.match_info["model"]))

    # ----- responses -----

    def _check_auth(self, request: web.Request) -> web.Response | None:
        """None when the request carries the API key (or no key is required), else the 401 answer."""
        if self.api_key is None or self._authorized(request, self.api_key):
            return None
        return self._error_response(401, "Invalid API key.")

    def _error_response(
        self, status: int, message: str | None = None, *, retry_after: str | None = None, body: Any = None
    ) -> web.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="application/json", headers=headers)
        if body is None:
            body = self._error_body(status, message or _default_message(status))
        return self._json_response(status, body, headers)

    @staticmethod
    def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=dumps(body), content_type="application/json", headers=headers)

    # ----- provider hooks -----

    def _add_routes(self, app: web.Application) -> None:
        """Register the provider's routes; model calls go through `_model_call`."""
        raise NotImplementedError

    def _authorized(self, request: web.Request, api_key: str) -> bool:
        """Whether the request carries `api_key` the way the provider's SDK sends it."""
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        """The provider's error JSON for `status`."""
        raise NotImplementedError

    def _model_info(self, name: str) -> dict[str, Any]:
        """The provider's description of one model."""
        raise NotImplementedError

    def _model_page(self, models: list[dict[str, Any]]) -> dict[str, Any]:
        """The provider's envelope around a list of models."""
        raise NotImplementedError

    def _exchange(self, request: web.Request, body: dict[str, Any]) -> Exchange:
        """Model, prompt (last user text) and input word count of a model-call body; `text` is set later."""
        raise NotImplementedError

    def _completion(self, exchange: Exchange) -> dict[str, Any]:
        """The non-streaming answer."""
        raise NotImplementedError

    def _stream_head(self, exchange: Exchange) -> list[bytes]:
        """SSE events before the content chunks."""
        return []

    def _stream_chunk(self, exchange: Exchange, index: int, piece: str, last: bool) -> bytes:
        """The SSE event carrying one piece of the reply; `last` is False when the stream will break."""
        raise NotImplementedError

    def _stream_tail(self, exchange: Exchange) -> list[bytes]:
        """SSE events after the content chunks (finish, usage, end marker)."""
        return []

    def _extra(self, name: str) -> int:
        """One of `usage_extras`, 0 when absent. Example: ``self._extra("cached_tokens")``."""
        return int(self.usage_extras.get(name, 0))


def _parse_object(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _default_message(status: int) -> str:
    if status in _MESSAGES:
        return _MESSAGES[status]
    try:
        return f"{http.HTTPStatus(status).phrase}."
    except ValueError:
        return f"Error {status}."
