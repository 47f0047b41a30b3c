"""Experiments on live traffic, offline: replayed GSM8K answers of two recorded models whose true
difference is known (GPT-4 Turbo 0.850, Mixtral 0.630 correct), whole experiments through
`Orchestra` on real MLflow stores, and the decision logic repeated over seeds on the recorded
table."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from pathlib import Path

import polars as pl
import pytest
import yaml

from orchestra import FunctionConnector, Orchestra
from orchestra.analysis.ab import ab_report
from orchestra.app.cli import main
from orchestra.config.experiments import ExperimentSettings
from orchestra.config.loader import load_settings
from orchestra.errors import ConfigError, InsufficientResponses, InvalidRequest
from orchestra.experiments import (
    Monitor,
    Observation,
    apply_overrides,
    arm_answers,
    assign,
    plan_experiment,
    replay_experiment,
    true_difference,
)
from orchestra.experiments.readback import arm_value, experiment_requests, experiment_status
from orchestra.experiments.simulate import traffic
from orchestra.experiments.widget import ExperimentWidget
from orchestra.improve.command import dataset_prompts
from orchestra.improve.data import recorded_table
from orchestra.improve.versions import rollback, versions
from orchestra.tracking.reader import load_requests
from orchestra.tracking.request_ids import sweep_request_id
from orchestra.tracking.settings import TrackingSettings

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT / "data" / "gsm8k_routellm" / "responses.parquet"
GPT4, MIXTRAL = "gpt-4-turbo", "mixtral-8x7b"


def gsm8k_config(control: str, candidate: str, **experiment) -> dict:
    spec = {
        "candidates": {"candidate": {"overrides": {"routing.rules.0.providers": [candidate]}}},
        "min_effect": 0.1,
        "min_per_arm": 50,
        "guardrails": {"cost": None, "latency_p95": None},
        **experiment,
    }
    return {
        "framework": {"name": "gsm8k-experiments", "default_task_type": "math"},
        "datasets": {"gsm8k": {"path": str(GSM8K), "quality_column": "correct"}},
        "models": {
            GPT4: {"type": "replay", "dataset": "gsm8k", "model": "gpt-4-1106-preview"},
            MIXTRAL: {"type": "replay", "dataset": "gsm8k", "model": "mistralai/Mixtral-8x7B-Instruct-v0.1"},
        },
        "routing": {"rules": [{"providers": [control]}]},
        "experiments": {"canary": spec},
    }


@pytest.fixture(scope="module")
def gsm8k_answers() -> dict[str, dict]:
    settings = load_settings(gsm8k_config(GPT4, MIXTRAL))
    table = asyncio.run(recorded_table(settings, dataset_prompts(settings)))
    return {name: arm_answers(table, name) for name in (GPT4, MIXTRAL)}


def write(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def drive(experiment, prompts: list[str], *, seed: int, limit: int = 20_000) -> int:
    """Send the seeded traffic through the experiment until it decides; returns the requests sent."""
    sent = 0
    for user, prompt in traffic(prompts, seed=seed, users=500):
        if experiment.decision is not None or sent >= limit:
            break
        await experiment.process_request(prompt, user_id=user)
        sent += 1
    return sent


# ---- assignment, overrides, plan --------------------------------------------------------


def test_assignment_is_deterministic_sticky_and_follows_the_split():
    shares = {"control": 0.9, "candidate": 0.1}
    first = [assign(f"u{i}", experiment="e", salt="s", shares=shares) for i in range(20_000)]
    again = [assign(f"u{i}", experiment="e", salt="s", shares=shares) for i in range(20_000)]
    assert first == again
    counts = collections.Counter(a.arm for a in first)
    assert 0.09 < counts["candidate"] / 20_000 < 0.11
    assert {a.probability for a in first if a.arm == "candidate"} == {0.1}
    resalted = [assign(f"u{i}", experiment="e", salt="t", shares=shares).arm for i in range(20_000)]
    assert sum(a.arm != b for a, b in zip(first, resalted, strict=True)) > 2_000
    wider = [
        assign(f"u{i}", experiment="e", salt="s", shares={"control": 0.8, "candidate": 0.2})
        for i in range(20_000)
    ]
    moved = [(a.arm, b.arm) for a, b in zip(first, wider, strict=True) if a.arm != b.arm]
    assert moved and set(moved) == {("control", "candidate")}  # only units at the boundary move


def test_dotted_overrides_walk_mappings_and_lists_without_touching_the_control():
    raw = {"routing": {"rules": [{"providers": ["a"]}]}, "consensus": {}}
    changed = apply_overrides(
        raw,
        {"routing.rules.0.providers": ["b"], "routing.default_strategy": "cost_aware", "consensus.x.y": 1},
    )
    assert changed["routing"] == {"rules": [{"providers": ["b"]}], "default_strategy": "cost_aware"}
    assert changed["consensus"] == {"x": {"y": 1}}
    assert raw["routing"]["rules"][0]["providers"] == ["a"]
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(raw, {"routing.rules.3.providers": ["b"]})


def test_bad_experiment_settings_are_refused_with_the_key():
    with pytest.raises(ConfigError, match="split must give a weight to each arm"):
        load_settings(
            {"experiments": {"e": {"candidates": {"b": {"overrides": {"x": 1}}}, "split": {"a": 1}}}}
        )
    with pytest.raises(ConfigError, match="either config"):
        load_settings(
            {"experiments": {"e": {"candidates": {"b": {"config": "x.yaml", "overrides": {"x": 1}}}}}}
        )
    with pytest.raises(ConfigError, match=r"experiments\.e\.unit"):
        load_settings({"experiments": {"e": {"candidates": {"b": {"overrides": {"x": 1}}}, "unit": "ip"}}})
    orch = Orchestra({}, tracking=TrackingSettings(enabled=False))
    with pytest.raises(ConfigError, match="no experiment 'nope'"):
        orch.start_experiment("nope")
    with pytest.raises(ConfigError, match=r"experiment 'x': alpha: .*less than 0\.5"):
        orch.start_experiment("x", {"candidates": {"b": {"overrides": {"x": 1}}}, "alpha": 0.9})
    orch.close()


def test_the_plan_needs_more_than_a_fixed_horizon_and_grows_with_a_skewed_split():
    even = plan_experiment(
        ExperimentSettings(candidates={"b": {"overrides": {"x": 1}}}), sd=0.4, basis="test"
    )
    skewed = plan_experiment(
        ExperimentSettings(candidates={"b": {"overrides": {"x": 1}}}, split={"control": 9, "b": 1}),
        sd=0.4,
        basis="test",
    )
    assert even.max_requests > even.fixed_horizon["b"]
    assert skewed.max_requests > 2 * even.max_requests
    two = plan_experiment(
        ExperimentSettings(candidates={"b": {"overrides": {"x": 1}}, "c": {"overrides": {"x": 2}}}), sd=0.4
    )
    assert two.alpha == pytest.approx(0.025)  # Bonferroni over candidates


# ---- the decision logic on the recorded table, repeated over seeds ---------------------


def test_a_truly_worse_candidate_is_stopped_in_every_seed(gsm8k_answers):
    settings = load_settings(gsm8k_config(GPT4, MIXTRAL)).experiments["canary"]
    answers = {"control": gsm8k_answers[GPT4], "candidate": gsm8k_answers[MIXTRAL]}
    assert true_difference(answers, "candidate") == pytest.approx(-0.220, abs=0.001)
    outcomes = [replay_experiment("canary", settings, answers, seed=seed) for seed in range(20)]
    assert {o.decision.outcome for o in outcomes} == {"stop"}
    assert all(o.requests < o.plan.max_requests / 2 for o in outcomes)


def test_a_truly_equal_candidate_is_never_promoted(gsm8k_answers):
    settings = load_settings(gsm8k_config(GPT4, MIXTRAL)).experiments["canary"]
    answers = {"control": gsm8k_answers[GPT4], "candidate": gsm8k_answers[GPT4]}  # A/A: difference 0
    outcomes = [replay_experiment("canary", settings, answers, seed=seed) for seed in range(100)]
    counts = collections.Counter(o.decision.outcome for o in outcomes)
    assert counts["promote"] <= settings.alpha * 100
    assert counts["inconclusive"] >= 95
    assert all(
        o.decision.total >= o.plan.max_requests for o in outcomes if o.decision.outcome == "inconclusive"
    )


def test_a_truly_better_candidate_is_promoted_when_its_cost_is_allowed(gsm8k_answers):
    settings = load_settings(gsm8k_config(MIXTRAL, GPT4)).experiments["canary"]
    answers = {"control": gsm8k_answers[MIXTRAL], "candidate": gsm8k_answers[GPT4]}
    outcomes = [replay_experiment("canary", settings, answers, seed=seed) for seed in range(20)]
    assert collections.Counter(o.decision.outcome for o in outcomes)["promote"] >= 16
    guarded = settings.model_copy(
        update={"guardrails": settings.guardrails.model_copy(update={"cost": 0.25})}
    )
    stopped = replay_experiment("canary", guarded, answers, seed=0)
    assert stopped.decision.outcome == "stop" and "cost" in stopped.decision.reason  # 36x the cost


def test_guardrails_on_latency_and_cost_stop_a_candidate_that_is_slower_or_dearer():
    settings = ExperimentSettings(candidates={"b": {"overrides": {"x": 1}}}, min_per_arm=50, look_every=50)
    monitor = Monitor(settings, plan_experiment(settings, sd=0.5))
    for i in range(2_000):
        arm = "control" if i % 2 else "b"
        monitor.assigned(arm, f"u{i}")
        slow = 1.4 if arm == "b" else 1.0
        monitor.record(
            arm, Observation(float(i % 3 == 0), 0.001, 1000.0 * slow * (1 + (i % 100) / 100), False)
        )
        if monitor.due() and monitor.look().decision is not None:
            break
    assert monitor.decision is not None and monitor.decision.outcome == "stop"
    assert "latency_p95" in monitor.decision.reason


# ---- whole experiments through Orchestra ------------------------------------------------


async def test_a_worse_candidate_is_stopped_through_orchestra_and_logged_with_its_assignment(
    tmp_path, tracking
):
    config = write(tmp_path, gsm8k_config(GPT4, MIXTRAL))
    orch = Orchestra(config, tracking=tracking)
    experiment = orch.start_experiment("canary")
    prompts = sorted(orch.datasets["gsm8k"].prompts())
    sent = await drive(experiment, prompts, seed=1)
    decision = experiment.decision
    assert (
        decision is not None
        and decision.outcome == "stop"
        and "worse on the primary metric" in decision.reason
    )

    # the same traffic through the decision logic on the recorded table decides the same way
    table = await recorded_table(orch.settings, [(p, "math") for p in prompts])
    answers = {"control": arm_answers(table, GPT4), "candidate": arm_answers(table, MIXTRAL)}
    replayed = replay_experiment("canary", experiment.settings, answers, seed=1, users=500, salt="canary")
    assert (replayed.decision.outcome, replayed.requests) == (decision.outcome, sent)

    after = await experiment.process_request(prompts[0], user_id=f"u-{experiment.arm_of('x')}")
    assert after["metadata"]["providers_used"] == [GPT4]  # ended: everyone gets the control
    live = experiment.status()
    experiment.close()
    assert orch.flush_sync()
    orch.close()

    requests = experiment_requests(load_requests(tracking=tracking), "canary")
    assert requests.height == sent + 1
    assert set(requests["phase"]) == {"running", "ended"}
    running = requests.filter(pl.col("phase") == "running")
    shares = dict(zip(running["arm"], running["assignment_probability"], strict=False))
    assert shares == {"control": 0.5, "candidate": 0.5}
    sticky = running.group_by("user_id").agg(pl.col("arm").n_unique().alias("arms"))
    assert sticky["arms"].max() == 1
    assert running.filter(pl.col("arm") == "candidate")["answered_by"].unique().to_list() == [MIXTRAL]
    report = ab_report(running, arm="arm", unit=None, control="control")
    assert report.table.filter(pl.col("metric") == "quality")["significant"].item()
    assert arm_value(requests, "candidate").snips == pytest.approx(
        live.arms.filter(pl.col("arm") == "candidate")["quality"].item()
    )

    status = experiment_status("canary", tracking=tracking, config=config)
    assert status.decision.outcome == "stop"
    assert status.arms["requests"].to_list() == live.arms["requests"].to_list()
    assert status.look.candidates["candidate"].primary == live.look.candidates["candidate"].primary
    assert (
        main(
            [
                "experiment",
                "status",
                "canary",
                "--config",
                str(config),
                "--tracking",
                str(_mlflow_yaml(tmp_path, tracking)),
            ]
        )
        == 0
    )
    widget = ExperimentWidget("canary", tracking=tracking, config=config)
    assert "always-valid" in widget.view.value and "STOP" in widget.view.value


async def test_a_better_candidate_is_promoted_written_back_and_rolled_back(
    tmp_path, tracking, client, capsys
):
    config = write(tmp_path, gsm8k_config(MIXTRAL, GPT4, split={"control": 1, "candidate": 1}))
    orch = Orchestra(config, tracking=tracking)
    experiment = orch.start_experiment("canary")
    prompts = sorted(orch.datasets["gsm8k"].prompts())
    await drive(experiment, prompts, seed=2)
    assert experiment.decision.outcome == "promote" and experiment.decision.arm == "candidate"
    assert experiment.winner == "candidate"
    result = await experiment.process_request(prompts[0], user_id="anyone")
    assert result["metadata"]["providers_used"] == [GPT4]  # the promoted arm serves everyone
    assert "written_back" in experiment.details
    await experiment.aclose()
    orch.flush_sync()
    orch.close()

    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert written["routing"]["rules"][0]["providers"] == [GPT4]
    assert "promoted over the control" in config.read_text(encoding="utf-8")
    (kept,) = versions(config)
    assert yaml.safe_load(kept.read_text(encoding="utf-8"))["routing"]["rules"][0]["providers"] == [MIXTRAL]
    experiment_id = client.get_experiment_by_name(tracking.experiment).experiment_id
    (run,) = client.search_runs([experiment_id], "tags.`orchestra.kind` = 'experiment-write-back'")
    evidence = {a.path for a in client.list_artifacts(run.info.run_id, "experiment")}
    assert "experiment/evidence.json" in evidence
    (parent,) = client.search_runs([experiment_id], "tags.`orchestra.kind` = 'experiment'")
    assert parent.data.tags["orchestra.experiment.decision"] == "promote"
    rollback(config)
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["routing"]["rules"][0]["providers"] == [MIXTRAL]


async def test_a_failing_candidate_breaches_the_error_guardrail_and_anonymous_requests_are_excluded(
    make_orchestra, tracking
):
    good = FunctionConnector("good", lambda request: "fine")
    down = FunctionConnector("down", fail_always=True)
    orch = make_orchestra({"good": good, "down": down}, rules=[{"providers": ["good"]}])
    experiment = orch.start_experiment(
        "outage",
        {
            "candidates": {"broken": {"overrides": {"routing.rules.0.providers": ["down"]}}},
            "unit": "session_id",
            "min_per_arm": 20,
            "look_every": 10,
        },
        scorer=lambda prompt, response: None,  # no quality: only the error guardrail can decide
    )
    await experiment.process_request("hi")  # no session: served by the control, not analysed
    assert experiment.status().arms["requests"].sum() == 0
    for i in range(400):
        if experiment.decision is not None:
            break
        with contextlib.suppress(InsufficientResponses):
            await experiment.process_request("hi", session_id=f"s{i}")
    assert experiment.decision is not None and experiment.decision.outcome == "stop"
    assert "guardrail breached: error_rate" in experiment.decision.reason
    experiment.close()
    orch.flush_sync()
    requests = experiment_requests(load_requests(tracking=tracking), "outage")
    assert requests.filter(pl.col("session_id").is_null())["phase"].to_list() == ["excluded"]
    assert set(requests.filter(pl.col("arm") == "broken")["status"]) == {"error"}  # failures are logged


async def test_unit_request_assigns_by_the_logged_request_id(make_orchestra, tracking):
    a = FunctionConnector("a", lambda request: "from a")
    b = FunctionConnector("b", lambda request: "from b")
    orch = make_orchestra({"a": a, "b": b}, rules=[{"providers": ["a"]}])
    experiment = orch.start_experiment(
        "per-request",
        {
            "candidates": {"b": {"overrides": {"routing.rules.0.providers": ["b"]}}},
            "unit": "request",
            "min_per_arm": 1_000,  # no look decides here: only assignment is under test
        },
        scorer=lambda prompt, response: None,
    )
    for _ in range(40):
        await experiment.process_request("hi", user_id="same-user")
    predicted = sweep_request_id("sweep", "arm", 0)
    # an id set by the caller (a sweep) is the unit, and is kept
    await experiment.process_request("hi", user_id="same-user", request_id=predicted)
    experiment.close()
    orch.flush_sync()
    requests = experiment_requests(load_requests(tracking=tracking), "per-request")
    assert requests.height == 41 and predicted in requests["request_id"].to_list()
    assert set(requests["arm"]) == {"control", "b"}  # one user, both arms: the unit is the request
    shares = experiment.monitor.shares
    for row in requests.iter_rows(named=True):
        again = assign(row["request_id"], experiment="per-request", salt="per-request", shares=shares)
        assert again.arm == row["assigned_arm"] == row["arm"]
        assert again.probability == pytest.approx(row["assignment_probability"])


def _mlflow_yaml(folder: Path, tracking) -> Path:
    path = folder / "mlflow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tracking_uri": tracking.tracking_uri,
                "experiment": tracking.experiment,
                "artifact_location": tracking.artifact_location,
                "spool_dir": str(folder / "spool-cli"),
                "trace_writer": "thread",
            }
        ),
        encoding="utf-8",
    )
    return path


async def test_the_wrapper_takes_what_process_request_takes_and_does_not_count_a_callers_mistake(
    make_orchestra,
):
    a = FunctionConnector("a", lambda request: "from a")
    b = FunctionConnector("b", lambda request: "from b")
    orch = make_orchestra({"a": a, "b": b}, rules=[{"providers": ["a"]}])
    experiment = orch.start_experiment(
        "call-forms",
        {"candidates": {"b": {"overrides": {"routing.rules.0.providers": ["b"]}}}, "min_per_arm": 1_000},
        scorer=lambda prompt, response: 1.0,
    )
    with pytest.warns(DeprecationWarning, match="task_type"):  # the original positional task type
        result = await experiment.process_request("hi", "general", user_id="u1")
    assert result.metadata.task_type == "general"
    with pytest.raises(InvalidRequest, match="RequestOptions"):
        await experiment.process_request("hi", {"user_id": "u1"})
    with pytest.raises(InvalidRequest):  # refused by the engine: a caller's mistake
        await experiment.process_request("hi", user_id="u2", temperature=7.0)
    assert experiment.monitor.total == 1  # only the served request counts towards the decision
    stream = await experiment.process_request_stream("hi", user_id="u3")
    assert "".join([delta async for delta in stream]) in {"from a", "from b"}
    assert experiment.monitor.total == 1  # streams are served, not analysed
    experiment.close()
