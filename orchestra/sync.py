"""Run orchestra's coroutines from synchronous code, including inside Jupyter's running loop.

    result = run_sync(orch.process_request("hi", task_type="general", user_id="u1"))

Outside an event loop, each thread keeps one private loop, so clients bound to a loop keep
working across calls. Inside a running loop (Jupyter, IPython), the loop is made re-entrant
with nest-asyncio and the coroutine runs on it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion and return its result."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(coroutine)
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coroutine)


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop
