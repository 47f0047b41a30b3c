"""Budgets at run time and exploration that ends, through the engine: the router follows the
realised spend per 1,000 requests, warns and logs MLflow metrics when it drifts, and logs the
exploration share of history-based routing."""

from __future__ import annotations

import json
import logging

import polars as pl

from orchestra import Orchestra
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.tracking.reader import read_request_table

from .conftest import ALPACA, alpaca_config


def alpaca_table() -> pl.DataFrame:
    names = {m["model"]: name for name, m in alpaca_config()["models"].items()}
    frame = pl.read_parquet(ALPACA).filter(pl.col("model").is_in(list(names)))
    return frame.select(
        pl.col("instruction").alias("prompt"),
        pl.col("model").replace_strict(names).alias("provider"),
        (pl.col("preference") - 1).alias("quality"),
        (pl.col("output_chars") * 1e-6).alias("cost_usd"),
    )


async def test_realised_spend_is_followed_and_a_drift_warned_and_logged(tmp_path, tracking, client, caplog):
    table = alpaca_table()
    prompts = table["prompt"].unique(maintain_order=True).to_list()
    KNNRoutingPolicy.fit(table.filter(pl.col("prompt").is_in(prompts[:200]))).save(tmp_path / "policy")
    config = alpaca_config(
        default_strategy="learned",
        rules=[{"providers": ["gpt-4", "claude-2.1", "gemini-pro", "mixtral-8x7b", "mistral-7b"]}],
        learned={"policy": str(tmp_path / "policy"), "cost_weight": 0.0, "budget_per_1k": 0.05},
    )
    orch = Orchestra(config, tracking=tracking)
    with caplog.at_level(logging.WARNING, logger="orchestra.routing"):
        async with orch.run("budget") as run:
            for prompt in prompts[200:330]:
                await orch.process_request(prompt)
    await orch.aclose()
    spend = orch.task_router.spend_monitor
    assert spend is not None and spend.requests == 130 and spend.drifting  # far above $0.05 per 1k
    assert len([r for r in caplog.records if "routing spend drifts" in r.getMessage()]) == 1

    history = client.get_metric_history(run.run_id, "routing.spend_drift_warning")
    assert [(m.step, m.value) for m in history] == [(100, 1.0)]
    (per_1k,) = client.get_metric_history(run.run_id, "routing.spend_per_1k")
    assert per_1k.value > 0.05 * 1.2
    rows = read_request_table(tracking, run.run_id)
    details = [json.loads(text)["details"]["spend"] for text in rows["routing_json"]]
    assert details[0]["realised_per_1k"] is None and details[-1]["drifting"] is True
    assert {d["budget_per_1k"] for d in details} == {0.05}


async def test_exploration_share_falls_and_is_logged(tracking, client):
    config = alpaca_config(
        default_strategy="performance_based",
        rules=[{"providers": ["gpt-4", "gemini-pro", "mixtral-8x7b"]}],
        performance={
            "min_samples": 10,
            "load_history": False,
            "exploration": "epsilon_greedy",
            "epsilon": 0.3,
        },
    )
    orch = Orchestra(config, tracking=tracking)
    prompts = pl.read_parquet(ALPACA)["instruction"].unique(maintain_order=True).to_list()[:300]
    async with orch.run("explore then exploit") as run:
        results = [await orch.process_request(p) for p in prompts]
    await orch.aclose()
    answered = [r["metadata"]["answered_by"] for r in results]
    assert all(answered[:30].count(p) == 10 for p in ("gpt-4", "gemini-pro", "mixtral-8x7b"))  # warm-up
    rows = read_request_table(tracking, run.run_id)
    exploring = [json.loads(text)["exploring"] for text in rows["routing_json"]]
    assert all(exploring[:30]) and sum(exploring[200:]) < sum(exploring[30:130])  # exploration decays
    shares = client.get_metric_history(run.run_id, "routing.exploration_share")
    assert [m.step for m in shares] == [100, 200, 300]
    assert shares[0].value > shares[-1].value > 0
