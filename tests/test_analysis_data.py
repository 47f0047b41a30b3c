"""Logged requests as DataFrames, the seed's metrics API, exports and plots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from orchestra import FunctionConnector, Orchestra
from orchestra.analysis import calls_table, history, load_requests, performance_metrics, provider_comparison
from orchestra.analysis.plots import (
    effects_plot,
    frontier_plot,
    latency_plot,
    pareto_front,
    routing_shares_plot,
)
from tests.conftest import scripted_config


@pytest.fixture
async def logged(tracking):
    """Two runs over the same prompts, a flaky provider, two users with sessions."""
    config = scripted_config("steady", "flaky", rules=[{"providers": ["flaky", "steady"]}])
    orch = Orchestra(config, tracking=tracking)
    orch.model_registry.register_connector(
        "steady", FunctionConnector("steady", lambda r: f"steady {r.prompt}")
    )
    orch.model_registry.register_connector(
        "flaky", FunctionConnector("flaky", lambda r: f"flaky {r.prompt}", fail_first=3)
    )
    for arm in ("arm-a", "arm-b"):
        async with orch.run(arm):
            for i in range(6):
                user = "alice" if i % 2 == 0 else "bob"
                await orch.process_request(f"question {i}", user_id=user, session_id=f"{user}-1")
    await orch.flush()
    yield orch
    orch.close()


async def test_load_requests_reads_every_run_with_its_name(logged, tracking):
    frame = load_requests(tracking=tracking)
    assert frame.height == 12 and set(frame["run_name"]) == {"arm-a", "arm-b"}
    assert frame["request_id"].n_unique() == 12
    some = load_requests(tracking=tracking, columns=["prompt", "cost_usd"])
    assert set(some.columns) == {"request_id", "run_id", "timestamp", "prompt", "cost_usd", "run_name"}
    future = load_requests(tracking=tracking, since=datetime.now(UTC) + timedelta(hours=1))
    assert future.height == 0


async def test_calls_table_has_one_row_per_call(logged, tracking):
    calls = calls_table(load_requests(tracking=tracking))
    assert set(calls["provider"]) == {"flaky", "steady"}
    failed = calls.filter(~pl.col("ok"))
    assert (
        failed.height == 1 and failed["attempts"][0] == 3
    )  # three scripted failures, retried, then failover


async def test_history_of_a_user_and_a_session(logged, tracking):
    alice = history(user_id="alice", tracking=tracking)
    assert alice.height == 6 and set(alice["session_id"]) == {"alice-1"}
    assert alice["timestamp"].is_sorted()
    assert history(session_id="bob-1", tracking=tracking)["user_id"].unique().to_list() == ["bob"]
    with pytest.raises(ValueError):
        history()


async def test_seed_metrics_api(logged, tmp_path):
    metrics = await logged.get_performance_metrics(time_window_hours=1)
    assert metrics["total_requests"] == 12 and metrics["success_rate"] == 100.0
    assert metrics["p95_latency_ms"] >= metrics["p50_latency_ms"]
    comparison = await logged.get_provider_comparison()
    assert comparison["flaky"]["calls"] == 12 and comparison["flaky"]["success_rate"] == pytest.approx(
        100 * 11 / 12
    )
    assert metrics["best_provider"] == "steady"  # no quality labels: the higher success rate wins
    for suffix in ("json", "csv", "parquet"):
        path = await logged.export_metrics(tmp_path / f"export.{suffix}", days=1)
        assert path.stat().st_size > 0
    assert len(json.loads((tmp_path / "export.json").read_text())) == 12
    assert pl.read_parquet(tmp_path / "export.parquet").height == 12
    with pytest.raises(Exception, match=r"json, \.csv or \.parquet"):
        await logged.export_metrics(tmp_path / "export.xlsx")


def test_metrics_are_pure_and_accept_pandas():
    frame = pl.DataFrame(
        {
            "status": ["ok", "ok", "error"],
            "latency_ms": [100.0, 300.0, 50.0],
            "processing_time_ms": [1.0, 2.0, 3.0],
            "cost_usd": [0.1, 0.2, 0.0],
            "quality": [1.0, 0.0, None],
            "consensus_applied": [False, True, False],
            "answered_by": ["a", "b", None],
            "calls_json": [
                json.dumps(
                    [{"provider": "a", "ok": True, "latency_ms": 100.0, "cost_usd": 0.1, "quality": 1.0}]
                ),
                json.dumps(
                    [{"provider": "b", "ok": True, "latency_ms": 300.0, "cost_usd": 0.2, "quality": 0.0}]
                ),
                json.dumps([{"provider": "b", "ok": False, "latency_ms": 50.0, "cost_usd": 0.0}]),
            ],
        }
    )
    pandas_frame = frame.to_pandas()
    before = pandas_frame.copy()
    metrics = performance_metrics(pandas_frame)
    assert pandas_frame.equals(before)
    assert metrics["success_rate"] == pytest.approx(200 / 3) and metrics["avg_latency_ms"] == 200.0
    assert metrics["best_provider"] == "a"  # quality 1.0 against 0.0
    assert provider_comparison(frame)["b"]["success_rate"] == 50.0


def test_pareto_front_and_plots():
    cost = np.array([1.0, 2.0, 3.0, 2.5])
    quality = np.array([0.1, 0.3, 0.35, 0.2])
    assert sorted(pareto_front(cost, quality).tolist()) == [0, 1, 2]  # 3 is dominated by 1
    points = pl.DataFrame(
        {"name": ["a", "b", "c", "d"], "cost": cost, "quality": quality, "kind": ["arm"] * 4}
    )
    assert len(frontier_plot(points).axes) == 1
    from orchestra.analysis import ab

    rng = np.random.default_rng(0)
    report = ab.ab_report(
        pl.DataFrame(
            {
                "run_name": ["a"] * 50 + ["b"] * 50,
                "quality": rng.random(100),
                "status": ["ok"] * 100,
                "cost_usd": rng.random(100),
                "latency_ms": rng.random(100) + 1,
            }
        ),
        unit=None,
    )
    assert effects_plot(report).axes[0].get_yticklabels()
    calls = pl.DataFrame(
        {"provider": ["a", "a", "b"], "latency_ms": [10.0, 20.0, 30.0], "ok": [True, True, True]}
    )
    assert latency_plot(calls).axes
    requests = pl.DataFrame(
        {
            "timestamp": [datetime(2026, 1, 1, h, tzinfo=UTC) for h in (0, 0, 1, 2)],
            "answered_by": ["a", "b", "a", "a"],
        }
    )
    assert routing_shares_plot(requests).axes
