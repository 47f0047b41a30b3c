"""The cluster's one account of rate limits and budgets: run as a Ray actor, asked in batches.

Request permits are admission times on a sliding window per endpoint, like `RateLimiter`'s, but
granted several at once so that a worker asks once per batch, not once per call. A permit may be
used up to `slack_s` after its time (a worker wakes a little late, clocks differ a little), so the
window counted here is `per_seconds + slack_s` long: then no window of `per_seconds` at the
provider ever holds more than `requests` calls. Unused permits are given back.

Budgets are handed out as allowances: a worker spends its allowance without asking, and asks for
more when it runs out. Allowances never add up to more than the limit.

    ledger = LimitsLedger(clock=time.time)
    now, times = ledger.grant(("openai", "openai", None), 8, requests=500, per_seconds=60)
    granted = ledger.allowance("run:abc", limit_usd=5.0, want=0.5, need=0.02)   # 0.0: refused
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Window:
    requests: int | None
    tokens: int | None
    per_seconds: float
    admissions: deque[float] = field(default_factory=deque)
    token_log: deque[list[float]] = field(default_factory=deque)
    last: float = float("-inf")
    granted: list[float] = field(default_factory=list)
    returned: list[float] = field(default_factory=list)
    calls: int = 0


@dataclass
class _Account:
    limit_usd: float
    committed_usd: float = 0.0
    """Allowances handed out and not given back (spent or still held by a worker)."""


class LimitsLedger:
    """Permits per endpoint and allowances per budget for every worker of a cluster."""

    def __init__(self, clock: Callable[[], float] = time.time, slack_s: float = 1.0) -> None:
        self._clock = clock
        self.slack_s = slack_s
        self._windows: dict[Hashable, _Window] = {}
        self._accounts: dict[str, _Account] = {}

    def now(self) -> float:
        return self._clock()

    # ---- rate limits -----------------------------------------------------------------------

    def grant(
        self,
        key: Hashable,
        count: int,
        *,
        requests: int | None = None,
        tokens: int = 0,
        token_limit: int | None = None,
        per_seconds: float = 60.0,
        admissions: bool = True,
    ) -> tuple[float, list[float]]:
        """(now, admission times) of `count` permits of `tokens` tokens each, earliest first;
        with `admissions=False` only tokens are reserved (the call's permit came in a batch)."""
        window = self._window(key, requests, token_limit, per_seconds)
        window.calls += 1
        now = self._clock()
        span = window.per_seconds + self.slack_s
        while window.admissions and window.admissions[0] <= now - span:
            window.admissions.popleft()
        while window.token_log and window.token_log[0][0] <= now - span:
            window.token_log.popleft()
        times = []
        for _ in range(count):
            per_window = window.requests if admissions else None
            counted = per_window is not None
            at = max(now, window.last) if counted else now
            if per_window is not None and len(window.admissions) >= per_window:
                at = max(at, window.admissions[-per_window] + span)
            if window.tokens is not None and tokens:
                at = self._earliest_for_tokens(window, at, tokens, span)
                window.token_log.append([at, float(tokens)])
            if counted:
                window.admissions.append(at)
                window.last = at
            times.append(at)
        window.granted += times
        return now, times

    def give_back(self, key: Hashable, times: list[float], tokens: int = 0) -> None:
        """Permits a worker will not use (its shard ended, or it woke too late for them)."""
        window = self._windows.get(key)
        if window is None:
            return
        for at in times:
            if at in window.admissions:
                window.admissions.remove(at)
            for entry in window.token_log:
                if entry[0] == at and entry[1] == tokens:
                    window.token_log.remove(entry)
                    break
            window.returned.append(at)

    def keys(self) -> list[Hashable]:
        """The endpoints permits were asked for."""
        return list(self._windows)

    def grants(self, key: Hashable) -> dict[str, Any]:
        """What was granted and given back for `key`, and in how many calls (for tests, reports)."""
        window = self._windows.get(key)
        if window is None:
            return {"granted": [], "returned": [], "calls": 0}
        return {"granted": list(window.granted), "returned": list(window.returned), "calls": window.calls}

    def _window(self, key: Hashable, requests: int | None, tokens: int | None, per_seconds: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(requests, tokens, per_seconds)
        return window

    @staticmethod
    def _earliest_for_tokens(window: _Window, at: float, tokens: int, span: float) -> float:
        assert window.tokens is not None
        entries = list(window.token_log)
        start = 0
        while True:
            in_window = sum(e[1] for e in entries[start:] if e[0] > at - span)
            if in_window + tokens <= window.tokens or start >= len(entries):
                return at
            while start < len(entries) and entries[start][0] <= at - span:
                start += 1
            if start < len(entries):
                at = max(at, entries[start][0] + span)

    # ---- budgets ---------------------------------------------------------------------------

    def allowance(self, key: str, *, limit_usd: float, want: float, need: float) -> tuple[float, float]:
        """(granted, committed before): `want` if it fits the limit, else what is left if that
        covers `need`, else 0.0 (the caller refuses its call)."""
        account = self._accounts.setdefault(key, _Account(limit_usd))
        left = account.limit_usd - account.committed_usd
        committed = account.committed_usd
        granted = want if want <= left else (left if left >= need else 0.0)
        account.committed_usd += granted
        return granted, committed

    def give_back_allowance(self, key: str, unused_usd: float) -> None:
        account = self._accounts.get(key)
        if account is not None:
            account.committed_usd = max(account.committed_usd - unused_usd, 0.0)

    def committed(self, key: str) -> float:
        account = self._accounts.get(key)
        return 0.0 if account is None else account.committed_usd
