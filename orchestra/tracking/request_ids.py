"""Request ids a sweep can predict: the same (sweep, arm, prompt) always gets the same id.

A sweep's request that runs again (a Ray shard retried after its worker died, an arm resumed)
then writes the same row and the same trace again instead of a second one: `load_requests`
keeps one row per request id, and a trace written twice is updated (its span ids derive from
the request id).

    with next_request_id(sweep_request_id("3f2a...", "9c1b...", 17)):
        await orch.process_request(prompt)          # its record's request_id is that id

The id is taken once, by the next `RequestRecord` made in this context (the task of one request).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from contextvars import ContextVar

_NEXT: ContextVar[list[str] | None] = ContextVar("orchestra_next_request_id", default=None)


def sweep_request_id(sweep: str, arm_id: str, index: int) -> str:
    """32 hex digits (like a generated id, and an OTel trace id) for prompt `index` of an arm."""
    return hashlib.sha256(f"{sweep}\x1f{arm_id}\x1f{index}".encode()).hexdigest()[:32]


@contextlib.contextmanager
def next_request_id(request_id: str) -> Iterator[None]:
    """The next request record made in this context gets `request_id`."""
    token = _NEXT.set([request_id])
    try:
        yield
    finally:
        _NEXT.reset(token)


def take_request_id() -> str | None:
    """The id set by `next_request_id`, once (None when none is set, or it was taken)."""
    slot = _NEXT.get()
    return slot.pop() if slot else None
