"""Learned routing and the improvement loop on the recorded AlpacaEval outputs: the kNN policy,
the `learned` strategy from config, exploration -> training table -> held-out comparison ->
written-back config, off-policy estimates from logged propensities, and `orchestra improve`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from orchestra import ConfigError, Orchestra
from orchestra.analysis.requests import load_requests
from orchestra.config.schema import ImprovementSettings
from orchestra.improve import explore, improve_async, off_policy_value, training_table
from orchestra.routing.learned import KNNRoutingPolicy

from .conftest import ALPACA, alpaca_config

TOPICS = {
    "code": ["write a python function", "fix this python bug", "python class for a queue"],
    "poem": ["write a poem about rain", "a short poem on autumn", "poem about the sea"],
}


def synthetic_table() -> pl.DataFrame:
    """Provider `coder` wins on python prompts, `poet` on poems; `coder` costs more."""
    rows = []
    for topic, prompts in TOPICS.items():
        for prompt in prompts:
            rows.append((prompt, "coder", 1.0 if topic == "code" else 0.0, 0.01))
            rows.append((prompt, "poet", 1.0 if topic == "poem" else 0.2, 0.001))
    return pl.DataFrame(rows, schema=["prompt", "provider", "quality", "cost_usd"], orient="row")


def test_knn_policy_routes_by_neighbours_and_trades_off_cost(tmp_path: Path) -> None:
    policy = KNNRoutingPolicy.fit(synthetic_table(), k=3, prior_strength=0.5)
    assert policy.choose(["python function to sort a list", "a poem about the moon"]) == ["coder", "poet"]
    quality, cost = policy.estimates(["python function to sort a list"])
    assert quality[0, 0] > 0.6 > quality[0, 1]  # shrunk toward the provider means, not all the way
    assert cost[0, 0] == pytest.approx(0.01) and cost[0, 1] == pytest.approx(0.001)
    frugal = policy.with_cost_weight(100.0)  # $0.009 extra now outweighs the quality gap
    assert frugal.choose(["python function to sort a list"]) == ["poet"]
    assert policy.choose(["python function"], candidates=["poet", "unknown"]) == ["poet"]

    loaded = KNNRoutingPolicy.load(policy.save(tmp_path / "policy"))
    prompts = ["fix a python bug", "poem on winter", "unrelated words"]
    np.testing.assert_allclose(loaded.utilities(prompts), policy.utilities(prompts))
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["providers"] == ["coder", "poet"]


def test_knn_policy_on_sentence_embeddings_round_trips(tmp_path: Path) -> None:
    policy = KNNRoutingPolicy.fit(synthetic_table(), features="minilm", k=3, prior_strength=0.5)
    assert policy.choose(["implement a linked list in python", "verses about a summer night"]) == [
        "coder",
        "poet",
    ]
    loaded = KNNRoutingPolicy.load(policy.save(tmp_path / "policy"))
    np.testing.assert_allclose(loaded.utilities(["poem"]), policy.utilities(["poem"]), rtol=1e-6)


def test_bad_training_data_and_missing_policies_are_config_errors(tmp_path: Path, tracking) -> None:
    with pytest.raises(ConfigError, match="lacks columns"):
        KNNRoutingPolicy.fit(pl.DataFrame({"prompt": ["x"]}))
    with pytest.raises(ConfigError, match="cannot read the learned routing policy"):
        KNNRoutingPolicy.load(tmp_path / "nowhere")
    orch = Orchestra(
        alpaca_config(default_strategy="learned", rules=[{"providers": ["gpt-4"]}]), tracking=tracking
    )
    try:
        with pytest.raises(ConfigError, match=r"routing\.learned\.policy"):
            orch.process_request_sync("hello there")
    finally:
        orch.close()


def recorded_quality() -> dict[tuple[str, str], float]:
    """(prompt, provider name) -> recorded win score, straight from the parquet file."""
    names = {m["model"]: name for name, m in alpaca_config()["models"].items()}
    frame = pl.read_parquet(ALPACA).filter(pl.col("model").is_in(list(names)))
    return {
        (row["instruction"], names[row["model"]]): row["preference"] - 1.0
        for row in frame.iter_rows(named=True)
    }


@pytest.fixture
def explored(tmp_path: Path, tracking) -> tuple[Path, pl.DataFrame]:
    """A config file on the recorded data and the training table of an exploration run."""
    raw = alpaca_config(rules=[{"providers": ["gpt-4", "claude-2.1"]}])
    raw["routing"]["complexity_threshold"] = 0.5
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    frame = pl.read_parquet(ALPACA).unique("instruction", keep="first", maintain_order=True)
    prompts = list(zip(frame["instruction"], frame["dataset"], strict=True))
    run_id = asyncio.run(explore(config, prompts, tracking))
    table = training_table(load_requests(run_ids=[run_id], tracking=tracking))
    return config, table


async def test_improvement_loop_learns_evaluates_and_writes_back(explored, tracking, client) -> None:
    config, table = explored
    assert table.height == 403 * 5 and table["prompt"].n_unique() == 403
    assert table["cost_usd"].min() > 0  # exploration logged each call's cost

    report = await improve_async(config, table, tracking=tracking)
    held_out = report.learned["prompt"].to_list()
    assert report.quality.n_a == len(held_out) == report.current.height
    assert 150 < len(held_out) < 250  # the 50% hash split

    # the replayed evaluation agrees with a direct computation from the recorded labels
    truth = recorded_quality()
    policy = KNNRoutingPolicy.load(report.policy_dir)
    chosen = policy.choose(held_out)
    assert report.learned["answered_by"].to_list() == chosen
    assert report.quality.estimate_b == pytest.approx(
        np.mean([truth[(p, c)] for p, c in zip(held_out, chosen, strict=True)])
    )
    current = report.current["answered_by"].to_list()
    assert set(current) <= {"gpt-4", "claude-2.1"}
    assert report.quality.estimate_a == pytest.approx(
        np.mean([truth[(p, c)] for p, c in zip(held_out, current, strict=True)])
    )
    # held-out prompts were not used for training
    assert policy.metadata["training_prompts"] == 403 - len(held_out)
    assert report.cost_weight in ImprovementSettings().cost_weights
    assert report.cross_validation.height == len(ImprovementSettings().cost_weights)

    # the two evaluation arms are real MLflow runs with every request logged
    runs = {
        r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    }
    assert {"explore", "improve: current", "improve: learned"} <= set(runs)
    assert runs["improve: learned"].data.params["routing.default_strategy"] == "learned"

    if report.accepted:
        written = report.write(config.with_name("config.improved.yaml"))
    else:
        with pytest.raises(ConfigError, match="not accepted"):
            report.write(config.with_name("config.improved.yaml"))
        written = report.write(config.with_name("config.improved.yaml"), force=True)
    text = written.read_text()
    assert f"Held-out prompts: {len(held_out)}" in text and report.reason in text
    improved = yaml.safe_load(text)
    assert improved["routing"]["default_strategy"] == "learned"
    assert improved["routing"]["learned"]["policy"] == "models/learned_router"  # relative to the config
    orch = Orchestra(written, tracking=tracking)
    try:
        answer = await orch.process_request(held_out[0], task_type="helpful_base")
        assert answer["metadata"]["answered_by"] == chosen[0]
        assert answer["metadata"]["routing_strategy"] == "learned"
    finally:
        await orch.aclose()


async def test_a_strict_threshold_keeps_the_current_config(explored, tracking) -> None:
    config, table = explored
    strict = ImprovementSettings(quality_margin=0.0, auto_apply_threshold=0.999, min_data_points=50)
    report = await improve_async(config, table, settings=strict)
    assert not report.accepted and "non-inferiority" in report.reason
    with pytest.raises(ConfigError, match="not accepted"):
        report.write(config.with_name("never.yaml"))
    assert not config.with_name("never.yaml").exists()
    with pytest.raises(ConfigError, match="min_data_points"):
        await improve_async(config, table.head(50), settings=ImprovementSettings(min_data_points=100))


async def test_off_policy_estimate_from_randomised_logging_matches_the_truth(tracking) -> None:
    """Logged under uniform random routing (propensity 1/5 each), IPS recovers the value of
    another policy, known exactly here because every provider's label is recorded."""
    orch = Orchestra(
        alpaca_config(
            default_strategy="random",
            rules=[{"providers": ["gpt-4", "claude-2.1", "gemini-pro", "mixtral-8x7b", "mistral-7b"]}],
        ),
        tracking=tracking,
    )
    frame = pl.read_parquet(ALPACA).unique("instruction", keep="first", maintain_order=True)
    async with orch.run("random logging") as run:
        for prompt in frame["instruction"]:
            await orch.process_request(prompt)
    await orch.aclose()
    requests = load_requests(run_ids=[run.run_id], tracking=tracking)
    assert requests.height == 403

    def always_mixtral(prompts: list[str]) -> list[str]:
        return ["mixtral-8x7b"] * len(prompts)

    truth = recorded_quality()
    true_value = np.mean([truth[(p, "mixtral-8x7b")] for p in requests["prompt"]])
    estimate = off_policy_value(requests, always_mixtral)
    low, high = estimate.ips_ci
    assert low <= true_value <= high
    assert estimate.support == 1.0 and 50 < estimate.matched < 120
    assert estimate.effective_sample_size == pytest.approx(estimate.matched)
    assert abs(estimate.snips - true_value) < 0.1
    assert "IPS" in str(estimate)

    rules = requests.with_columns(
        pl.lit(json.dumps({"gpt-4": 1.0})).alias("propensities_json"), pl.lit("gpt-4").alias("answered_by")
    )
    blind = off_policy_value(rules, always_mixtral)
    assert blind.support == 0.0 and blind.matched == 0 and np.isnan(blind.snips)


def test_orchestra_improve_command_explores_learns_and_writes(tmp_path: Path, capsys) -> None:
    from orchestra.app.cli import main

    raw = alpaca_config(rules=[{"providers": ["gpt-4"]}])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///mlflow.db\nexperiment: improve\ntrace_writer: thread\n"
    )
    assert main(["improve", "--config", str(tmp_path / "config.yaml"), "--explore", "--force"]) == 0
    printed = capsys.readouterr().out
    assert (
        "every provider on 403 prompts" in printed and "training data: 2015 calls on 403 prompts" in printed
    )
    assert "held-out prompts:" in printed and "wrote" in printed
    improved = yaml.safe_load((tmp_path / "config.improved.yaml").read_text())
    assert improved["routing"]["default_strategy"] == "learned"
    assert (tmp_path / "models" / "learned_router" / "arrays.npz").is_file()
