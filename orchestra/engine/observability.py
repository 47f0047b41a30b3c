"""Observability for `Orchestra`: metrics collectors, debug info, logged-metrics queries."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.engine.records import RequestRecord
from orchestra.errors import InvalidRequest
from orchestra.logs import get_logger
from orchestra.metrics import MetricsCollector, request_metrics
from orchestra.redact import SECRETS
from orchestra.tracking.codec import record_dict

if TYPE_CHECKING:
    import polars as pl

    from orchestra.config.schema import Settings
    from orchestra.consensus.manager import ConsensusManager
    from orchestra.engine.hooks import Hooks
    from orchestra.resilience.guard import ProviderGuard
    from orchestra.routing.router import TaskRouter
    from orchestra.tracking.settings import TrackingSettings
    from orchestra.tracking.tracker import Tracker

logger = get_logger("orchestra")


class Observability:
    """Mixed into `Orchestra`: the seed's metrics API and the troubleshooting hooks."""

    settings: Settings
    tracker: Tracker
    tracking_settings: TrackingSettings
    task_router: TaskRouter
    consensus_manager: ConsensusManager
    hooks: Hooks
    metrics_collectors: list[MetricsCollector]
    last_record: RequestRecord | None
    _guards: dict[str, ProviderGuard]

    def add_metrics_collector(self, collector: MetricsCollector) -> None:
        """Send every request's metrics to `collector` (e.g. `PrometheusCollector()`)."""
        self.metrics_collectors.append(collector)

    async def get_debug_info(self) -> dict[str, Any]:
        """The last request's full trace (routing scores, each call, consensus), provider and
        tracking health: what the troubleshooting guide asks for."""
        record = self.last_record
        return {
            "last_request_trace": None if record is None else SECRETS.redact_obj(record_dict(record)),
            "last_request_profile": None if record is None else stage_timings(record),
            "providers": {
                name: {
                    "type": guard.connector.provider_type.value,
                    "circuit": guard.breaker.state,
                    "consecutive_failures": guard.breaker.failures,
                    "in_flight": guard.limiter.active if guard.limiter else None,
                    "budget_remaining_usd": guard.budget.remaining_usd if guard.budget else None,
                }
                for name, guard in self._guards.items()
            },
            "routing": {
                "strategy": self.settings.routing.default_strategy,
                "rules": len(self.task_router.rules),
            },
            "consensus": {
                "default": self.settings.consensus.default_strategy,
                "strategies": self.consensus_manager.names(),
            },
            "tracking": {
                "enabled": self.tracker.enabled,
                "queued": self.tracker.queued(),
                **vars(self.tracker.stats()),
            },
            "hooks_failed": self.hooks.failures,
        }

    # ---- metrics (the seed's API) ---------------------------------------------------------

    async def get_performance_metrics(self, time_window_hours: float = 24) -> dict[str, Any]:
        """Latency (mean, quantiles), volume, success rate, cost and the best provider, over the
        window, from everything logged to this experiment (this process's requests included)."""
        from orchestra.analysis.performance import performance_metrics

        return performance_metrics(await self._logged_requests(time_window_hours))

    async def get_provider_comparison(self, time_window_hours: float = 24 * 7) -> dict[str, dict[str, Any]]:
        """Per provider: calls, success rate, latency, cost, quality, answers returned."""
        from orchestra.analysis.performance import provider_comparison

        return provider_comparison(await self._logged_requests(time_window_hours))

    async def export_metrics(self, path: str | Path, days: float = 7) -> Path:
        """The logged requests of the last `days` to JSON, CSV or parquet (by the extension)."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".json", ".csv", ".parquet"):
            raise InvalidRequest(
                f"export_metrics writes .json, .csv or .parquet, not {suffix or 'no extension'!r}"
            )
        frame = await self._logged_requests(days * 24)
        await asyncio.to_thread(_write_frame, frame, target)
        return target

    async def _logged_requests(self, hours: float) -> pl.DataFrame:
        from orchestra.analysis.requests import load_requests

        await self.tracker.aflush()
        since = datetime.now(UTC) - timedelta(hours=hours)
        return await asyncio.to_thread(load_requests, since=since, tracking=self.tracking_settings)

    async def collect_metrics(self, record: RequestRecord) -> None:
        """Hand one finished request to every metrics collector."""
        observations = request_metrics(record)
        for collector in self.metrics_collectors:
            await _collect(collector, observations)


def _write_frame(frame: pl.DataFrame, target: Path) -> None:
    import polars as pl

    suffix = target.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(target)
    elif suffix == ".csv":
        frame.with_columns(pl.col(pl.List(pl.String)).list.join("|")).write_csv(target)
    else:
        target.write_text(json.dumps(frame.to_dicts(), default=str, indent=1), encoding="utf-8")


async def _collect(
    collector: MetricsCollector, observations: list[tuple[str, float, dict[str, str]]]
) -> None:
    try:
        for name, value, tags in observations:
            await collector.collect_custom_metric(name, value, tags)
    except Exception:
        logger.warning("metrics collector %r failed; the request goes on", collector, exc_info=True)


def stage_timings(record: RequestRecord) -> dict[str, float]:
    """Where a request's time went, in ms: routing, provider calls, consensus, the rest."""
    route = (record.route_end_ns - record.route_start_ns) / 1e6 if record.route_end_ns else 0.0
    consensus = (
        (record.consensus_end_ns - record.consensus_start_ns) / 1e6 if record.consensus_end_ns else 0.0
    )
    calls = (
        (max(c.end_ns for c in record.calls) - min(c.start_ns for c in record.calls)) / 1e6
        if record.calls
        else 0.0
    )
    total = record.processing_time_ms
    return {
        "route_ms": route,
        "calls_ms": calls,
        "consensus_ms": consensus,
        "other_ms": max(total - route - calls - consensus, 0.0),
        "total_ms": total,
    }
