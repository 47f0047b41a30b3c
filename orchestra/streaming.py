"""A streamed answer: an async iterator of text deltas that knows its metadata once it ends.

    stream = await orch.process_request("Tell me a story", user_id="u1", stream=True)
    async for delta in stream:
        print(delta, end="")
    stream.metadata["providers_used"]

The request is logged once, complete, when the stream ends, fails, or is closed early.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any


class StreamingResponse:
    """Iterate for text deltas; `text` grows as they arrive; `metadata` is set at the end."""

    def __init__(
        self, deltas: AsyncGenerator[str, None], metadata: Callable[[], dict[str, Any] | None]
    ) -> None:
        self._deltas = deltas
        self._metadata = metadata
        self._parts: list[str] = []

    def __aiter__(self) -> StreamingResponse:
        return self

    async def __anext__(self) -> str:
        delta = await self._deltas.__anext__()
        self._parts.append(delta)
        return delta

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The request's metadata once the stream has ended (None before)."""
        return self._metadata()

    async def collect(self) -> dict[str, Any]:
        """Read the whole stream; returns {"response": str, "metadata": {...}} like a plain request."""
        async for _ in self:
            pass
        return {"response": self.text, "metadata": self.metadata}

    async def aclose(self) -> None:
        """Stop early: the provider's stream is closed and the request logged as incomplete."""
        await self._deltas.aclose()

    async def __aenter__(self) -> StreamingResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
