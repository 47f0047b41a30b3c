"""What each provider did, per (task type, complexity): the memory of performance-based routing.

Observations come from logged request tables (`from_frame`, `from_store`) and from every request
this process makes (`observe`). Statistics weight each observation by
`0.5 ** (age / half_life)` and ignore those older than the window:

    history = PerformanceHistory(half_life_hours=24, window_hours=168)
    history.observe(record)
    history.stats("qa", "simple", "gpt-4")   # ProviderStats(n=..., quality_mean=..., ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestra.frames import as_frame

if TYPE_CHECKING:
    from orchestra.engine.records import RequestRecord  # routing reads the engine's record


ANY = "*"
_MAX_OBSERVATIONS = 5_000


@dataclass(frozen=True)
class ProviderStats:
    """Decay-weighted performance of one provider in one (task type, complexity) cell."""

    n: int
    weight: float
    success_rate: float
    latency_p50_ms: float
    cost_mean_usd: float
    quality_mean: float | None
    quality_weight: float
    quality_sum: float
    level: str = ""


EMPTY = ProviderStats(0, 0.0, 0.0, float("nan"), float("nan"), None, 0.0, 0.0, "none")


class PerformanceHistory:
    def __init__(self, *, half_life_hours: float | None = 24.0, window_hours: float | None = None) -> None:
        self.half_life_s = None if half_life_hours is None else half_life_hours * 3600.0
        self.window_s = None if window_hours is None else window_hours * 3600.0
        # (task type, complexity, provider) -> observations (time, ok, latency ms, cost, quality or nan)
        self._cells: dict[tuple[str, str, str], deque[tuple[float, float, float, float, float]]] = {}
        self._cache: dict[tuple[str, str, str], tuple[float, int, ProviderStats]] = {}
        self._versions: dict[tuple[str, str, str], int] = {}  # bumped when a cell changes
        self._lock = threading.Lock()

    def add(
        self,
        task_type: str,
        complexity: str,
        provider: str,
        *,
        ok: bool,
        latency_ms: float,
        cost_usd: float,
        quality: float | None = None,
        at: float | None = None,
    ) -> None:
        """One call's outcome, counted in its cell and in the coarser ones it backs off to."""
        observation = (
            time.time() if at is None else at,
            1.0 if ok else 0.0,
            float(latency_ms),
            float(cost_usd),
            float("nan") if quality is None else float(quality),
        )
        with self._lock:
            for key in ((task_type, complexity, provider), (task_type, ANY, provider), (ANY, ANY, provider)):
                self._cells.setdefault(key, deque(maxlen=_MAX_OBSERVATIONS)).append(observation)
                self._versions[key] = self._versions.get(key, 0) + 1

    def observe(self, record: RequestRecord) -> None:
        """Every call of a finished request (its complexity from the routing decision)."""
        complexity = (record.routing or {}).get("complexity") or ANY
        at = record.start_ns / 1e9
        for call in record.calls:
            if call.cache_hit:
                continue  # a cached answer says nothing new about the provider
            self.add(
                record.task_type,
                complexity,
                call.provider,
                ok=call.ok,
                latency_ms=call.latency_ms,
                cost_usd=call.cost_usd,
                quality=call.quality,
                at=at,
            )

    COLUMNS = ("timestamp", "task_type", "complexity", "calls_json")
    """The request-table columns `from_frame` reads."""

    @classmethod
    def from_frame(cls, frame: Any, **options: Any) -> PerformanceHistory:
        """History from a logged request table (polars or pandas; the `calls_json` column)."""
        history = cls(**options)
        data = as_frame(frame)
        for row in data.select(cls.COLUMNS).iter_rows():
            timestamp, task_type, complexity, calls_json = row
            at = timestamp.timestamp() if timestamp is not None else None
            for call in json.loads(calls_json or "[]"):
                if call.get("cache_hit") or (call.get("extra") or {}).get("cache_hit"):  # row_version 2, 1
                    continue
                history.add(
                    task_type,
                    complexity or ANY,
                    call["provider"],
                    ok=call["ok"],
                    latency_ms=call["latency_ms"],
                    cost_usd=call["cost_usd"],
                    quality=call.get("quality"),
                    at=at,
                )
        return history

    def merge(self, other: PerformanceHistory) -> None:
        """Add every observation of `other` (e.g. history loaded from the store)."""
        with other._lock:
            cells = {key: list(values) for key, values in other._cells.items()}
        with self._lock:
            for key, values in cells.items():
                self._cells.setdefault(key, deque(maxlen=_MAX_OBSERVATIONS)).extend(values)
                self._versions[key] = self._versions.get(key, 0) + 1

    def stats(self, task_type: str, complexity: str, provider: str, min_samples: int = 1) -> ProviderStats:
        """The most specific cell with at least `min_samples` observations (or the coarsest one)."""
        best = EMPTY
        for level, key in (
            ("task+complexity", (task_type, complexity, provider)),
            ("task", (task_type, ANY, provider)),
            ("all", (ANY, ANY, provider)),
        ):
            stats = self._cell_stats(key, level)
            if stats.n >= min_samples:
                return stats
            if stats.n > best.n:
                best = stats
        return best

    def _cell_stats(self, key: tuple[str, str, str], level: str) -> ProviderStats:
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and cached[1] == self._versions.get(key, 0) and now - cached[0] < 60.0:
            return cached[2]
        with self._lock:
            observations = list(self._cells.get(key, ()))
            version = self._versions.get(key, 0)
        stats = self._compute(observations, now, level)
        self._cache[key] = (now, version, stats)
        return stats

    def _compute(
        self, observations: list[tuple[float, float, float, float, float]], now: float, level: str
    ) -> ProviderStats:
        if not observations:
            return EMPTY
        data = np.array(observations, dtype=float)
        age = np.maximum(now - data[:, 0], 0.0)
        if self.window_s is not None:
            data, age = data[age <= self.window_s], age[age <= self.window_s]
            if len(data) == 0:
                return EMPTY
        weights = np.ones(len(data)) if self.half_life_s is None else 0.5 ** (age / self.half_life_s)
        ok, latency, cost, quality = data[:, 1], data[:, 2], data[:, 3], data[:, 4]
        total = float(weights.sum())
        labelled = ~np.isnan(quality)
        quality_weight = float(weights[labelled].sum())
        quality_sum = float((weights[labelled] * quality[labelled]).sum())
        succeeded = ok > 0
        latencies = latency[succeeded] if succeeded.any() else latency
        latency_weights = weights[succeeded] if succeeded.any() else weights
        return ProviderStats(
            n=len(data),
            weight=total,
            success_rate=float((weights * ok).sum() / total),
            latency_p50_ms=float(np.quantile(latencies, 0.5, weights=latency_weights, method="inverted_cdf")),
            cost_mean_usd=float(
                (weights[succeeded] * cost[succeeded]).sum() / max(weights[succeeded].sum(), 1e-12)
            )
            if succeeded.any()
            else 0.0,
            quality_mean=quality_sum / quality_weight if quality_weight > 0 else None,
            quality_weight=quality_weight,
            quality_sum=quality_sum,
            level=level,
        )
