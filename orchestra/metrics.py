"""Metrics collectors (the seed's `MetricsCollector`): every request's numbers, to any backend.

    orch.add_metrics_collector(PrometheusCollector())   # orch: an Orchestra

After each request, every collector receives `collect_custom_metric(name, value, tags)` for:
request_latency_ms, request_success, cost_usd, tokens, and per call provider_latency_ms and
provider_success (tags: task_type, status, provider, model).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from orchestra.entrypoints import discover
from orchestra.errors import ConfigError

if TYPE_CHECKING:
    from orchestra.engine.records import RequestRecord

COLLECTORS_GROUP = "orchestra.metrics_collectors"
"""The entry-point group of metrics collectors (`framework.metrics_collectors` names them)."""


class MetricsCollector(ABC):
    """Receives every request's observations (name, value, tags)."""

    @abstractmethod
    async def collect_custom_metric(self, metric_name: str, value: float, tags: dict[str, str]) -> None:
        """Record one observation."""


def configured_collectors(names: list[str]) -> list[MetricsCollector]:
    """The metrics-collector plugins `framework.metrics_collectors` names, built."""
    if not names:
        return []
    found, errors = discover(COLLECTORS_GROUP, MetricsCollector)
    broken = {error.name: error.error for error in errors}
    collectors = []
    for name in names:
        if name in broken:
            raise ConfigError(f"framework.metrics_collectors: plugin {name!r} is broken: {broken[name]}")
        if name not in found:
            available = ", ".join(sorted(found)) or "none installed"
            raise ConfigError(f"framework.metrics_collectors names {name!r}; installed: {available}")
        collectors.append(found[name])
    return collectors


def request_metrics(record: RequestRecord) -> list[tuple[str, float, dict[str, str]]]:
    """The observations a finished request yields."""
    base = {"task_type": record.task_type, "status": record.status}
    observations = [
        ("request_latency_ms", record.processing_time_ms, base),
        ("request_success", 1.0 if record.status == "ok" else 0.0, base),
        ("cost_usd", record.cost_usd, base | {"provider": record.answered_by or "none"}),
        ("tokens", float(record.input_tokens + record.output_tokens), base),
    ]
    for call in record.calls:
        tags = {"task_type": record.task_type, "provider": call.provider, "model": call.model or "unknown"}
        observations.append(("provider_latency_ms", call.latency_ms, tags))
        observations.append(("provider_success", 1.0 if call.ok else 0.0, tags))
    return observations


class PrometheusCollector(MetricsCollector):
    """A Prometheus exporter (prometheus_client): counters and histograms on its own registry.

    `exposition()` gives the text format; `serve(port)` exposes /metrics on 127.0.0.1.
    """

    def __init__(self, namespace: str = "orchestra") -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._requests = Counter(
            f"{namespace}_requests",
            "Requests by task type and status",
            ["task_type", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            f"{namespace}_request_latency_seconds",
            "Request processing time",
            ["task_type"],
            registry=self.registry,
        )
        self._calls = Counter(
            f"{namespace}_provider_calls",
            "Provider calls by outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self._provider_latency = Histogram(
            f"{namespace}_provider_latency_seconds", "Provider latency", ["provider"], registry=self.registry
        )
        self._cost = Counter(f"{namespace}_cost_usd", "Spend in USD", ["provider"], registry=self.registry)
        self._tokens = Counter(f"{namespace}_tokens", "Tokens used", ["task_type"], registry=self.registry)

    async def collect_custom_metric(self, metric_name: str, value: float, tags: dict[str, str]) -> None:
        if metric_name == "request_success":
            self._requests.labels(tags["task_type"], tags["status"]).inc()
        elif metric_name == "request_latency_ms":
            self._latency.labels(tags["task_type"]).observe(value / 1000.0)
        elif metric_name == "provider_success":
            self._calls.labels(tags["provider"], "ok" if value else "error").inc()
        elif metric_name == "provider_latency_ms":
            self._provider_latency.labels(tags["provider"]).observe(value / 1000.0)
        elif metric_name == "cost_usd" and value:
            self._cost.labels(tags.get("provider", "none")).inc(value)
        elif metric_name == "tokens":
            self._tokens.labels(tags["task_type"]).inc(value)

    def exposition(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    def serve(self, port: int = 9464) -> None:
        """Serve /metrics on 127.0.0.1:port from a background thread."""
        from prometheus_client import start_http_server

        start_http_server(port, addr="127.0.0.1", registry=self.registry)
