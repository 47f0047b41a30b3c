"""Event hooks: user code subscribes to moments of a request; a failing hook never breaks it.

Events: before_route, after_route, before_call, after_call, after_consensus, on_error,
after_request. A hook receives one dict (the event name under "event", plus that event's
data) and may be a function or a coroutine function.

    @orch.hooks.on("after_call")
    def log_call(event):
        print(event["provider"], event["call"].latency_ms)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from orchestra.logs import get_logger

logger = get_logger("orchestra.hooks")

EVENTS = (
    "before_route",
    "after_route",
    "before_call",
    "after_call",
    "after_consensus",
    "on_error",
    "after_request",
)
Hook = Callable[[dict[str, Any]], Any]


class Hooks:
    """The event hooks of one `Orchestra` (`orch.hooks`): subscribe with `on`, leave with `off`.

    >>> hooks = Hooks()
    >>> seen = hooks.on("after_request", lambda event: event["event"])
    >>> hooks.wants("after_request"), hooks.wants("before_route")
    (True, False)
    """

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {event: [] for event in EVENTS}
        self.failures = 0

    def on(self, event: str, hook: Hook | None = None) -> Any:
        """Subscribe `hook` to `event` (also usable as a decorator: `@hooks.on("after_call")`)."""
        if event not in self._hooks:
            raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        if hook is None:
            return lambda function: self.on(event, function)
        self._hooks[event].append(hook)
        return hook

    def off(self, event: str, hook: Hook) -> None:
        self._hooks[event].remove(hook)

    def wants(self, event: str) -> bool:
        """Whether anyone listens (so payloads are only built when they will be used)."""
        return bool(self._hooks[event])

    async def emit(self, event: str, **payload: Any) -> None:
        for hook in list(self._hooks[event]):
            try:
                result = hook({"event": event, **payload})
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.failures += 1
                logger.warning(
                    "hook %r for %s failed; the request goes on",
                    getattr(hook, "__name__", hook),
                    event,
                    exc_info=True,
                )
