"""Event hooks, metrics collectors (the Prometheus exporter), the profiler, debug info and
debug logging with secrets redacted."""

from __future__ import annotations

import io
import itertools
import logging
import urllib.request

import pytest

from orchestra import FunctionConnector, Orchestra, PerformanceProfiler, PrometheusCollector
from orchestra.engine.hooks import EVENTS, Hooks
from orchestra.errors import AuthenticationFailed
from orchestra.redact import MASK, SECRETS


def consensus_trio() -> dict[str, FunctionConnector]:
    return {
        "a": FunctionConnector("a", lambda r: "Paris is the capital of France."),
        "b": FunctionConnector("b", lambda r: "The capital of France is Paris."),
        "c": FunctionConnector("c", lambda r: "Lyon."),
    }


async def test_every_event_reaches_its_hooks_in_order(make_orchestra) -> None:
    orch = make_orchestra(consensus_trio())
    seen: list[tuple[str, str | None]] = []

    for event in EVENTS:
        orch.hooks.on(event, lambda payload: seen.append((payload["event"], payload.get("provider"))))

    await orch.process_request("capital of France?", require_consensus=True, min_providers=3)
    events = [event for event, _ in seen]
    assert events[:2] == ["before_route", "after_route"]
    assert events.count("before_call") == 3 and events.count("after_call") == 3
    assert events[-2:] == ["after_consensus", "after_request"]
    assert "on_error" not in events
    assert sorted(p for e, p in seen if e == "after_call") == ["a", "b", "c"]


async def test_hook_payloads_carry_the_decision_calls_and_outcome(make_orchestra) -> None:
    orch = make_orchestra(consensus_trio())
    payloads: dict[str, dict] = {}

    @orch.hooks.on("after_route")
    def routed(payload):
        payloads["route"] = payload

    @orch.hooks.on("after_consensus")
    async def agreed(payload):  # coroutine hooks are awaited
        payloads["consensus"] = payload

    result = await orch.process_request("capital of France?", require_consensus=True, min_providers=3)
    assert payloads["route"]["decision"].chosen == ["a", "b", "c"]
    assert payloads["route"]["request_id"] == result["metadata"]["request_id"]
    assert payloads["consensus"]["chosen"].content == result["response"]
    assert payloads["consensus"]["outcome"].chosen_provider in {"a", "b"}


async def test_a_failing_hook_is_logged_and_the_request_still_succeeds(make_orchestra, caplog) -> None:
    orch = make_orchestra({"a": FunctionConnector("a", lambda r: "fine")})

    def explode(payload):
        raise RuntimeError("hook bug")

    async def explode_later(payload):
        raise ValueError("async hook bug")

    orch.hooks.on("before_call", explode)
    orch.hooks.on("after_request", explode_later)
    with caplog.at_level(logging.WARNING, logger="orchestra.hooks"):
        result = await orch.process_request("hello")
    assert result["response"] == "fine"
    assert orch.hooks.failures == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "orchestra.hooks"]
    assert any("explode" in m and "before_call" in m for m in messages)
    assert any("explode_later" in m and "after_request" in m for m in messages)


async def test_on_error_fires_for_a_failed_request(make_orchestra) -> None:
    orch = make_orchestra({"down": FunctionConnector("down", fail_always=True)})
    errors = []
    orch.hooks.on("on_error", lambda payload: errors.append(payload["error"]))
    with pytest.raises(Exception) as raised:
        await orch.process_request("hello")
    assert errors == [raised.value]


def test_unknown_events_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event 'after_lunch'"):
        Hooks().on("after_lunch", print)


async def test_prometheus_collector_exposes_request_and_call_metrics(make_orchestra) -> None:
    orch = make_orchestra(
        {
            "a": FunctionConnector("a", lambda r: "one two three", cost_per_call=0.25),
            "down": FunctionConnector("down", fail_always=True),
        },
        rules=[{"providers": ["down", "a"]}],
    )
    prometheus = PrometheusCollector()
    orch.add_metrics_collector(prometheus)
    for _ in range(3):
        await orch.process_request("hello", task_type="qa")
    text = prometheus.exposition()
    assert 'orchestra_requests_total{status="ok",task_type="qa"} 3.0' in text
    assert 'orchestra_provider_calls_total{outcome="error",provider="down"} 3.0' in text
    assert 'orchestra_provider_calls_total{outcome="ok",provider="a"} 3.0' in text
    assert 'orchestra_cost_usd_total{provider="a"} 0.75' in text
    assert 'orchestra_request_latency_seconds_count{task_type="qa"} 3.0' in text


def test_prometheus_collector_serves_metrics_over_http() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collector = PrometheusCollector(namespace="served")
    collector.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    assert "# TYPE served_requests_total counter" in body


async def test_a_failing_metrics_collector_does_not_break_requests(make_orchestra, caplog) -> None:
    class Broken(PrometheusCollector):
        async def collect_custom_metric(self, metric_name, value, tags):
            raise ConnectionError("statsd is down")

    orch = make_orchestra({"a": FunctionConnector("a", lambda r: "fine")})
    orch.add_metrics_collector(Broken())
    with caplog.at_level(logging.WARNING, logger="orchestra"):
        assert (await orch.process_request("hello"))["response"] == "fine"
    assert any("metrics collector" in r.getMessage() for r in caplog.records)


async def test_profiler_counts_api_attempts_time_and_memory(make_orchestra) -> None:
    orch = make_orchestra(
        {
            "flaky": FunctionConnector("flaky", lambda r: "x" * 200_000, fail_first=2),
            "b": FunctionConnector("b"),
        },
        rules=[{"providers": ["flaky"]}],
    )
    ticks = itertools.count()  # each reading of the clock is one second later than the last
    clock = lambda: float(next(ticks))  # noqa: E731
    with PerformanceProfiler(clock) as outer:  # reads 0 ... 3
        async with PerformanceProfiler(clock) as inner:  # reads 1 ... 2
            await orch.process_request("hello")
        await orch.process_request("again")
    assert inner.api_calls == 3  # two failed attempts, then the answer
    assert outer.api_calls == 4
    assert inner.memory_usage > 0.2  # the 200 kB answer was allocated inside the block
    assert (outer.elapsed_time, inner.elapsed_time) == (3000.0, 1000.0)  # ms
    assert "api_calls=3" in repr(inner)


async def test_debug_mode_profile_debug_info_and_redacted_logs(tracking) -> None:
    secret = "sk-test-" + "z" * 32
    SECRETS.register(secret)

    def leaks_key(request):
        raise AuthenticationFailed(f"bad key {secret}", provider="leaky")

    config = {
        "models": {"leaky": {"type": "function"}, "good": {"type": "function"}},
        "routing": {"rules": [{"providers": ["leaky", "good"]}]},
    }
    orch = Orchestra(config, tracking=tracking, debug=True, log_level="DEBUG", enable_profiling=True)
    orch.model_registry.register_connector("leaky", FunctionConnector("leaky", leaks_key))
    orch.model_registry.register_connector("good", FunctionConnector("good", lambda r: "answer"))
    handler = next(
        h for h in logging.getLogger("orchestra").handlers if h.get_name() == "orchestra-redacting-handler"
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        result = await orch.process_request("hello")
    finally:
        handler.setStream(previous)
        orch.close()
    profile = result["metadata"]["profile"]
    assert set(profile) == {"route_ms", "calls_ms", "consensus_ms", "other_ms", "total_ms"}
    assert profile["total_ms"] >= profile["calls_ms"] > 0

    logged = stream.getvalue()
    assert "call leaky" in logged and "AuthenticationFailed" in logged and "answered by good" in logged
    assert secret not in logged and MASK in logged

    info = await orch.get_debug_info()
    trace = info["last_request_trace"]
    assert [call["provider"] for call in trace["calls"]] == ["leaky", "good"]
    assert trace["routing"]["chosen"] == ["leaky"]
    assert secret not in str(info)
    assert set(info["providers"]) == {"leaky", "good"}
    assert info["providers"]["good"]["circuit"] == "closed"
    assert info["tracking"]["enabled"] is True
    assert info["last_request_profile"]["total_ms"] == profile["total_ms"]


def test_every_orchestra_logger_masks_keys_for_any_handler(caplog) -> None:
    """Records of child loggers reach the root handlers (here pytest's) already redacted."""
    import orchestra.engine.calls  # noqa: F401  (its module logger exists)

    secret = "sk-child-" + "q" * 30
    SECRETS.register(secret)
    with caplog.at_level(logging.WARNING):
        logging.getLogger("orchestra.engine").warning("calling with key %s", secret)
        logging.getLogger("orchestra.hooks").warning("hook saw %s", secret)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all(secret not in m and MASK in m for m in messages)
