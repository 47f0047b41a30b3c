"""A streamed answer: an async iterator of text deltas that knows its metadata once it ends.

    stream = await orch.process_request_stream("Tell me a story", user_id="u1")
    async for delta in stream:
        print(delta, end="")
    stream.metadata.providers_used

The request is logged once, complete, when the stream ends, fails, or is closed early. A
stream that is never read (no provider is called until it is) is logged as `abandoned`: when
it is closed unread, when it is garbage-collected unread, or at the next flush, whichever
comes first; reading it after that raises `StreamAbandoned`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING

from orchestra.errors import OrchestraError, ProviderError, StreamAbandoned

if TYPE_CHECKING:
    from orchestra.engine.records import RequestRecord
    from orchestra.engine.result import RequestMetadata, RequestResult

PENDING, STARTED, ABANDONED = "pending", "started", "abandoned"


class UnreadStream:
    """The bookkeeping of one stream until it is read: how to log it as abandoned."""

    def __init__(self, request_id: str, abandon: Callable[[], Awaitable[None]]) -> None:
        self.request_id = request_id
        self.abandon = abandon
        self.state = PENDING


class UnreadStreams:
    """An `Orchestra`'s streams that nobody has started reading; each ends logged exactly once."""

    def __init__(self) -> None:
        self._pending: dict[str, UnreadStream] = {}
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, request_id: str, abandon: Callable[[], Awaitable[None]]) -> UnreadStream:
        unread = UnreadStream(request_id, abandon)
        with self._lock:
            self._pending[request_id] = unread
        return unread

    def start(self, unread: UnreadStream) -> bool:
        """Mark it read; False when it was abandoned already."""
        with self._lock:
            if unread.state == PENDING:
                unread.state = STARTED
                self._pending.pop(unread.request_id, None)
            return unread.state == STARTED

    async def abandon(self, unread: UnreadStream) -> None:
        """Log it as abandoned, unless it was read or abandoned already."""
        with self._lock:
            if unread.state != PENDING:
                return
            unread.state = ABANDONED
            self._pending.pop(unread.request_id, None)
        await unread.abandon()

    async def abandon_all(self) -> int:
        """Log every stream still unread as abandoned (at flush); how many there were."""
        with self._lock:
            pending = list(self._pending.values())
        for unread in pending:
            await self.abandon(unread)
        loop = asyncio.get_running_loop()
        scheduled = [task for task in self._tasks if task.get_loop() is loop]
        if scheduled:  # abandonments scheduled on this loop by garbage collection: wait for them too
            await asyncio.gather(*scheduled, return_exceptions=True)
        return len(pending)

    def __len__(self) -> int:
        return len(self._pending)

    def collected(self, unread: UnreadStream, loop: asyncio.AbstractEventLoop) -> None:
        """The stream was garbage-collected: log it now on its loop if that loop runs, else it
        stays pending for the next flush."""
        if unread.state != PENDING or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: left for the flush
            loop.call_soon_threadsafe(self._spawn, unread)

    def _spawn(self, unread: UnreadStream) -> None:
        task = asyncio.ensure_future(self.abandon(unread))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def stream_error(error: Exception, record: RequestRecord) -> OrchestraError:
    """What a stream that failed raises: an `OrchestraError` carrying the request id (an error
    from elsewhere is wrapped in a `ProviderError` of the provider that was streaming)."""
    if isinstance(error, OrchestraError):
        error.request_id = error.request_id or record.request_id
        return error
    provider = record.calls[-1].provider if record.calls else "stream"
    return ProviderError(
        f"the stream failed: {type(error).__name__}: {error}", provider=provider, request_id=record.request_id
    )


class StreamingResponse:
    """Iterate for text deltas; `text` grows as they arrive; `metadata` is set at the end;
    `request_id` is the id the request is logged under."""

    def __init__(
        self,
        deltas: AsyncGenerator[str, None],
        result: Callable[[], RequestResult | None],
        *,
        unread: UnreadStream | None = None,
        streams: UnreadStreams | None = None,
    ) -> None:
        self._deltas = deltas
        self._result = result
        self._parts: list[str] = []
        self._unread = unread
        self._streams = streams
        self.request_id = unread.request_id if unread is not None else None
        if unread is not None and streams is not None:
            weakref.finalize(self, streams.collected, unread, asyncio.get_running_loop())

    def __aiter__(self) -> StreamingResponse:
        return self

    async def __anext__(self) -> str:
        if self._unread is not None and self._streams is not None:
            unread, self._unread = self._unread, None
            if not self._streams.start(unread):
                raise StreamAbandoned(
                    "this stream was logged as abandoned (unread at a flush or close)",
                    request_id=unread.request_id,
                )
        delta = await self._deltas.__anext__()
        self._parts.append(delta)
        return delta

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def metadata(self) -> RequestMetadata | None:
        """The request's metadata once the stream has ended (None before)."""
        result = self._result()
        return None if result is None else result.metadata

    async def collect(self) -> RequestResult:
        """Read the whole stream; returns a `RequestResult` like a plain request."""
        from orchestra.engine.result import RequestResult

        async for _ in self:
            pass
        metadata = self.metadata
        assert metadata is not None  # set when the stream ended
        return RequestResult(self.text, metadata)

    async def aclose(self) -> None:
        """Stop early: the provider's stream is closed and the request logged as incomplete
        (or as abandoned, when nothing was read)."""
        if self._unread is not None and self._streams is not None:
            unread, self._unread = self._unread, None
            await self._streams.abandon(unread)
        await self._deltas.aclose()

    async def __aenter__(self) -> StreamingResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
