"""Cascades on the recorded GSM8K answers (RouteLLM's GPT-4 Turbo and Mixtral, graded): the
acceptance model, the learned threshold, the engine calling stages in turn and logging every
escalation with its probability and reason."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from orchestra import ConfigError, FunctionConnector, Orchestra
from orchestra.config.loader import load_settings
from orchestra.improve import recorded_table
from orchestra.improve.command import dataset_prompts
from orchestra.routing.budget import Target
from orchestra.routing.cascade import CascadePolicy, fit_cascade, frontier_stages
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.outcomes import Outcomes
from orchestra.tracking.reader import read_request_table

from .conftest import ROOT

STAGES = ["mixtral-8x7b", "gpt-4-turbo"]


def gsm8k_config(**routing) -> dict:
    raw = yaml.safe_load((ROOT / "config.gsm8k.yaml").read_text())
    raw["datasets"]["gsm8k"]["path"] = str(ROOT / "data" / "gsm8k_routellm" / "responses.parquet")
    raw["routing"].update(routing)
    return raw


@pytest.fixture(scope="module")
def gsm8k() -> tuple[pl.DataFrame, Outcomes, list[str]]:
    settings = load_settings(gsm8k_config())
    table = asyncio.run(recorded_table(settings, dataset_prompts(settings)))
    return table, Outcomes.from_table(table), table["prompt"].unique(maintain_order=True).to_list()


@pytest.fixture(scope="module")
def fitted(gsm8k) -> tuple[CascadePolicy, list[str]]:
    table, outcomes, prompts = gsm8k
    fit, select, test = prompts[:300], prompts[300:450], prompts[450:]
    router = KNNRoutingPolicy.fit(table.filter(pl.col("prompt").is_in(fit)), providers=outcomes.providers)
    budget = 0.3 * float(np.nanmean(outcomes.subset(fit).cost[:, outcomes.column("gpt-4-turbo")])) * 1000
    policy, pick = fit_cascade(
        outcomes, STAGES, fit_prompts=fit, select_prompts=select, target=Target(budget), quality_model=router
    )
    assert pick.met and pick.spend_per_1k <= budget
    return policy, test


def test_frontier_stages_go_from_cheap_to_strong(gsm8k):
    _, outcomes, _ = gsm8k
    assert frontier_stages(outcomes) == STAGES


def test_acceptance_probabilities_separate_right_from_wrong_on_held_out_answers(gsm8k, fitted):
    _, outcomes, _ = gsm8k
    policy, test = fitted
    held_out = outcomes.subset(test)
    probability = policy.stage_probabilities(held_out)[:, 0]
    right = held_out.quality[:, held_out.column("mixtral-8x7b")] == 1
    assert roc_auc_score(right, probability) > 0.6  # 0.5 is chance; ~0.64 on these 209 prompts
    run = policy.simulate(held_out)
    mixtral, gpt4 = (np.nanmean(held_out.quality[:, held_out.column(s)]) for s in STAGES)
    assert 0 < run.escalation_share() < 1
    escalated_at_random = mixtral + run.escalation_share() * (gpt4 - mixtral)
    assert np.nanmean(run.quality) > escalated_at_random  # better than escalating blindly
    gpt4_cost = held_out.cost[:, held_out.column("gpt-4-turbo")]
    mixtral_cost = held_out.cost[:, held_out.column("mixtral-8x7b")]
    assert np.allclose(run.cost[run.kept_stage == 0], mixtral_cost[run.kept_stage == 0])
    assert np.all(run.cost[run.kept_stage == 1] > gpt4_cost[run.kept_stage == 1])  # paid for both


def test_judge_explains_each_verdict_and_the_policy_round_trips(fitted, tmp_path):
    policy, test = fitted
    empty = policy.judge("mixtral-8x7b", test[0], "   ")
    assert not empty.accept and empty.reason == "empty answer"
    assert policy.judge("gpt-4-turbo", test[0], "").accept  # the last stage is always kept
    strict = policy.with_threshold(1.01).judge("mixtral-8x7b", test[0], "It is 42.\n#### 42")
    assert not strict.accept and "weakest signal" in strict.reason and 0 <= strict.probability <= 1
    loaded = CascadePolicy.load(policy.save(tmp_path / "cascade"))
    answer = "Natalia sold 48/2 = 24 clips in May.\n#### 72"
    assert loaded.judge("mixtral-8x7b", test[1], answer) == policy.judge("mixtral-8x7b", test[1], answer)
    settings = json.loads((tmp_path / "cascade" / "cascade.json").read_text())
    settings["signals"] = ["prior"]
    (tmp_path / "cascade" / "cascade.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="other signals"):
        CascadePolicy.load(tmp_path / "cascade")


async def test_the_engine_runs_the_cascade_and_logs_every_escalation(gsm8k, fitted, tmp_path, tracking):
    _, outcomes, _ = gsm8k
    policy, test = fitted
    policy.save(tmp_path / "cascade")
    config = gsm8k_config(default_strategy="cascade", cascade={"policy": str(tmp_path / "cascade")})
    prompts = test[:60]
    expected = policy.simulate(outcomes.subset(prompts))
    orch = Orchestra(config, tracking=tracking)
    async with orch.run("cascade") as run:
        results = [await orch.process_request(p, task_type="math") for p in prompts]
    await orch.aclose()
    kept = [STAGES[i] for i in expected.kept_stage]
    assert [r["metadata"]["answered_by"] for r in results] == kept
    assert [r["metadata"]["cost_usd"] for r in results] == pytest.approx(expected.cost.tolist())
    assert [r["metadata"]["quality"] for r in results] == pytest.approx(expected.quality.tolist())

    table = read_request_table(tracking, run.run_id)
    routing = [json.loads(text) for text in table["routing_json"]]
    escalated = [r["cascade"] for r in routing if r["cascade"]["escalations"]]
    assert len(escalated) == int((expected.kept_stage == 1).sum()) > 0
    for cascade in escalated:
        (step,) = cascade["escalations"]
        assert step["provider"] == "mixtral-8x7b" and step["probability"] < step["threshold"]
        assert "P(good)=" in step["reason"] or step["reason"] == "empty answer"
        assert cascade["kept"] == "gpt-4-turbo"
    assert all(r["strategy"] == "cascade" for r in routing)


async def test_a_failed_stage_escalates_and_says_why(fitted, tmp_path, tracking):
    policy, test = fitted
    policy.save(tmp_path / "cascade")
    config = gsm8k_config(default_strategy="cascade", cascade={"policy": str(tmp_path / "cascade")})
    orch = Orchestra(config, tracking=tracking)

    orch.model_registry.register_connector(
        "mixtral-8x7b", FunctionConnector("mixtral-8x7b", fail_always=True)
    )
    result = await orch.process_request(test[0], task_type="math")
    await orch.aclose()
    steps = orch.last_record.routing["cascade"]["steps"]
    assert result["metadata"]["answered_by"] == "gpt-4-turbo"
    assert steps[0]["accepted"] is False and steps[0]["reason"].startswith("call failed")
    assert result["metadata"]["providers_failed"][0]["provider"] == "mixtral-8x7b"
