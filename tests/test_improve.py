"""Learned routing and the improvement loop on the recorded AlpacaEval outputs: the kNN policy,
the `learned` strategy from config, exploration -> training table -> fit / select / confirm ->
decision, off-policy estimates (IPS, SNIPS, DR) from logged propensities, and `orchestra improve`
writing back in place and rolling back."""

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
from orchestra.config.loader import load_settings
from orchestra.config.schema import ImprovementSettings
from orchestra.improve import (
    explore,
    improve_async,
    off_policy_value,
    offline_cycle,
    replay_config,
    training_table,
)
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.outcomes import Outcomes

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
    """A config file on the recorded data (claude-2.1 first: expensive and weak here) and the
    training table of an exploration run."""
    raw = alpaca_config(rules=[{"providers": ["claude-2.1", "gpt-4"]}])
    raw["routing"]["complexity_threshold"] = 0.5
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    frame = pl.read_parquet(ALPACA).unique("instruction", keep="first", maintain_order=True)
    prompts = list(zip(frame["instruction"], frame["dataset"], strict=True))
    run_id = asyncio.run(explore(config, prompts, tracking))
    table = training_table(load_requests(run_ids=[run_id], tracking=tracking))
    return config, table


async def test_improvement_loop_fits_selects_and_confirms_on_separate_prompts(
    explored, tracking, client
) -> None:
    config, table = explored
    assert table.height == 403 * 5 and table["prompt"].n_unique() == 403
    assert table["cost_usd"].min() > 0 and table["output"].null_count() == 0  # cost and answer logged

    report = await improve_async(config, table, tracking=tracking)
    fit, select, confirm = (report.split.texts(part) for part in ("fit", "select", "confirm"))
    assert len(fit) + len(select) + len(confirm) == 403
    assert not (set(fit) & set(select)) and not (set(fit) | set(select)) & set(confirm)
    assert 170 < len(confirm) < 240 and 55 < len(select) < 110  # holdout 0.5, select 0.2
    assert report.current["prompt"].to_list() == confirm == report.learned["prompt"].to_list()

    # the candidate was fitted on the fit split only, and answers as its offline replay says
    candidate = report.candidate
    assert candidate is not None and report.decision is not None
    policy = candidate.policy if candidate.policy is not None else candidate.cascade.quality_model
    assert policy.trained_on(fit + select + confirm) == fit
    quality, cost = candidate.route(Outcomes.from_table(table).subset(confirm))
    assert report.learned["quality"].to_numpy() == pytest.approx(quality)
    assert report.learned["cost_usd"].to_numpy() == pytest.approx(cost)
    truth = recorded_quality()
    current = report.current["answered_by"].to_list()
    assert set(current) <= {"claude-2.1", "gpt-4", "gemini-pro", "mixtral-8x7b", "mistral-7b"}
    assert report.quality.estimate_a == pytest.approx(
        np.mean([truth[(p, c)] for p, c in zip(confirm, current, strict=True)])
    )
    # claude-2.1 is the weakest and dearest here: a learned candidate is better and cheaper
    assert report.status == "accepted" and report.power.adequate
    assert report.quality.effect > 0 and report.cost.effect < 0 and 0.5 < report.p_replicates <= 1
    assert "non-inferior" in report.reason and "candidate" in str(report)

    runs = {
        r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    }
    assert {"explore", "improve: current", "improve: candidate"} <= set(runs)
    assert runs["improve: candidate"].data.params["routing.default_strategy"] == candidate.kind

    written = report.write(config.with_name("candidate.yaml"))
    text = written.read_text()
    assert f"Confirm prompts: {len(confirm)}" in text and report.reason in text
    improved = yaml.safe_load(text)
    assert improved["routing"]["default_strategy"] == candidate.kind
    assert improved["routing"][candidate.kind]["policy"].startswith("models/learned_router/")
    assert "budget_per_1k" not in improved["routing"][candidate.kind]  # derived, not configured
    orch = Orchestra(written, tracking=tracking)
    try:
        answer = await orch.process_request(confirm[0], task_type="helpful_base")
        assert answer["metadata"]["routing_strategy"] == candidate.kind
    finally:
        await orch.aclose()


async def test_thin_evidence_proposes_and_a_strict_gate_keeps_the_current_config(explored, tracking) -> None:
    config, table = explored
    few = table.filter(pl.col("prompt").is_in(table["prompt"].unique(maintain_order=True).head(60).to_list()))
    thin = await improve_async(config, few, settings=ImprovementSettings(min_data_points=50))
    assert not thin.power.adequate and thin.power.detectable > 0.15 and thin.status != "accepted"
    if thin.decision.p_non_inferior < 0.05 and thin.decision.gain != "none":
        assert thin.status == "proposed" and "PROPOSED, not applied" in thin.reason
    with pytest.raises(ConfigError, match="not accepted"):
        thin.write(config.with_name("never.yaml"))
    assert not config.with_name("never.yaml").exists()

    strict = ImprovementSettings(quality_margin=0.0, auto_apply_threshold=0.999, min_data_points=50)
    report = await improve_async(config, table, settings=strict)
    assert report.status == "rejected" and "non-inferiority" in report.reason
    with pytest.raises(ConfigError, match="min_data_points"):
        await improve_async(config, table.head(50), settings=ImprovementSettings(min_data_points=100))


async def test_offline_cycle_decides_as_the_engine_does(explored, tracking) -> None:
    """The replication benchmark's offline loop reaches the same decision as `improve_async`."""
    config, table = explored
    report = await improve_async(config, table)
    settings = load_settings(config)
    current = await replay_config(settings, list(zip(table["prompt"], table["task_type"], strict=True)))
    providers = sorted(table["provider"].unique().to_list())
    cycle = offline_cycle(settings.routing, settings.improvement, table, current.unique("prompt"), providers)
    assert cycle.decision is not None and cycle.decision.status == report.status
    assert cycle.decision.quality.effect == pytest.approx(report.quality.effect)
    assert cycle.decision.cost.effect == pytest.approx(report.cost.effect)


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
    assert np.isnan(estimate.dr)  # no reward model given

    def oracle_model(prompts: list[str], providers: list[str]) -> np.ndarray:
        return np.array([truth[(p, a)] for p, a in zip(prompts, providers, strict=True)])

    exact = off_policy_value(requests, always_mixtral, reward_model=oracle_model)
    assert exact.dr == pytest.approx(true_value)  # a perfect reward model: residuals are zero
    assert exact.dr_ci[0] <= true_value <= exact.dr_ci[1] and "DR" in str(exact)
    frame = pl.read_parquet(ALPACA)
    names = {m["model"]: name for name, m in alpaca_config()["models"].items()}
    table = frame.filter(pl.col("model").is_in(list(names))).select(
        pl.col("instruction").alias("prompt"),
        pl.col("model").replace_strict(names).alias("provider"),
        (pl.col("preference") - 1).alias("quality"),
    )
    model = KNNRoutingPolicy.fit(table)  # trained on every prompt: an optimistic, not exact, model
    doubly_robust = off_policy_value(requests, always_mixtral, reward_model=model.expected_quality)
    assert doubly_robust.dr_ci[0] <= true_value <= doubly_robust.dr_ci[1]
    assert doubly_robust.dr_ci[1] - doubly_robust.dr_ci[0] < high - low  # narrower than IPS
    assert estimate.support == 1.0 and 50 < estimate.matched < 120
    assert estimate.effective_sample_size == pytest.approx(estimate.matched)
    assert abs(estimate.snips - true_value) < 0.1
    assert "IPS" in str(estimate)

    rules = requests.with_columns(
        pl.lit(json.dumps({"gpt-4": 1.0})).alias("propensities_json"), pl.lit("gpt-4").alias("answered_by")
    )
    blind = off_policy_value(rules, always_mixtral)
    assert blind.support == 0.0 and blind.matched == 0 and np.isnan(blind.snips)


def test_orchestra_improve_writes_back_in_place_and_rolls_back(tmp_path: Path, capsys) -> None:
    from mlflow.tracking import MlflowClient

    from orchestra.app.cli import main
    from orchestra.improve.versions import history, versions

    raw = alpaca_config(rules=[{"providers": ["claude-2.1"]}])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    original = config.read_text()
    (tmp_path / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///mlflow.db\nexperiment: improve\ntrace_writer: thread\n"
    )
    assert main(["improve", "--config", str(config), "--explore"]) == 0
    printed = capsys.readouterr().out
    assert (
        "every provider on 403 prompts" in printed and "training data: 2015 calls on 403 prompts" in printed
    )
    assert "splits: fit" in printed and "power:" in printed and "decision: ACCEPT" in printed
    assert "-  - providers:\n-    - claude-2.1" in printed or "-    - claude-2.1" in printed  # the diff
    improved = yaml.safe_load(config.read_text())
    assert improved["routing"]["default_strategy"] in ("learned", "cascade")
    (kept,) = versions(config)
    assert kept.read_text() == original and history(config)[0]["action"] == "write-back"
    policy = tmp_path / improved["routing"][improved["routing"]["default_strategy"]]["policy"]
    assert policy.is_dir() and policy.parent == tmp_path / "models" / "learned_router"

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("improve").experiment_id
    (run,) = client.search_runs([experiment], "tags.`orchestra.kind` = 'improve-write-back'")
    assert run.data.params["status"] == "accepted" and "confirm.p_non_inferior" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "improve")}
    assert {"improve/evidence.json", "improve/config.yaml", "improve/previous_config.yaml"} <= artifacts
    assert client.list_artifacts(run.info.run_id, "policy")  # the policy the new config uses

    assert main(["improve", "rollback", "--config", str(config)]) == 0
    assert config.read_text() == original and "restored the previous" in capsys.readouterr().out
    assert versions(config) == [] and [h["action"] for h in history(config)] == ["write-back", "rollback"]
    assert main(["improve", "rollback", "--config", str(config)]) == 2  # nothing older is kept
    assert "no earlier version" in capsys.readouterr().err


def test_orchestra_improve_runs_the_cycle_on_a_schedule(tmp_path: Path, capsys) -> None:
    """`--schedule` runs the cycle every improvement.analysis_interval hours in one process
    (here 0.0036 s, two cycles); it explores once, then learns from what is logged."""
    from orchestra.app.cli import main

    from .conftest import ROOT

    raw = yaml.safe_load((ROOT / "config.gsm8k.yaml").read_text())
    raw["datasets"]["gsm8k"]["path"] = str(ROOT / "data" / "gsm8k_routellm" / "responses.parquet")
    raw["improvement"] = {"analysis_interval": 1e-6, "policy_dir": "models/router"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    (tmp_path / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///mlflow.db\nexperiment: improve\ntrace_writer: thread\n"
    )
    assert main(["improve", "--config", str(config), "--explore", "--schedule", "--cycles", "2"]) == 0
    printed = capsys.readouterr().out
    assert "running the improvement cycle every 1e-06 h" in printed
    assert printed.count("exploration run") == 1 and printed.count("training data:") == 2
    assert printed.count("decision:") == 2
