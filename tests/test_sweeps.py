"""Sweeps: arms from a grid, prompt sources, dry runs, and resumption after a real interruption."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from orchestra import ConfigError
from orchestra.sweeps import expand_arms, load_sweep, run_sweep
from orchestra.sweeps.prompts import load_prompts
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from tests.conftest import alpaca_config

SMALL = {
    "gpt-4": "gpt4",
    "mixtral-8x7b": "Mixtral-8x7B-Instruct-v0.1",
    "mistral-7b": "Mistral-7B-Instruct-v0.2",
}


def write_sweep(
    folder: Path,
    *,
    grid: dict | None = None,
    arms: list | None = None,
    time_scale: float = 0.0,
    limit: int = 6,
    concurrency: int = 4,
    prompts: dict | None = None,
) -> Path:
    config = {
        "datasets": alpaca_config()["datasets"],
        "models": {
            name: {"type": "replay", "dataset": "alpacaeval", "model": model, "time_scale": time_scale}
            for name, model in SMALL.items()
        },
        "routing": {"rules": [{"providers": ["gpt-4"]}]},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    sweep = {
        "name": "test-sweep",
        "config": "config.yaml",
        "prompts": prompts or {"dataset": "alpacaeval", "limit": limit},
        "concurrency": concurrency,
    }
    if grid is not None:
        sweep["grid"] = grid
    if arms is not None:
        sweep["arms"] = arms
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def sweep_tracking(folder: Path, template: Path) -> TrackingSettings:
    shutil.copy(template, folder / "mlflow.db")
    return TrackingSettings(
        tracking_uri="sqlite:///mlflow.db",
        artifact_location="artifacts",
        spool_dir="spool",
        experiment="sweeps",
        trace_writer="thread",
        base_dir=folder,
    ).resolved()


def test_grid_times_seeds_and_repetitions(tmp_path):
    path = write_sweep(
        tmp_path,
        grid={"routing.default_strategy": ["rules", "random"], "consensus.similarity_threshold": [0.5, 0.7]},
    )
    spec, _, identity = load_sweep(path)
    spec = spec.model_copy(update={"seeds": [0, 1], "repetitions": 2})
    arms = expand_arms(spec)
    assert len(arms) == 2 * 2 * 2 * 2 and len({a.arm_id for a in arms}) == 16
    assert "default_strategy=random" in arms[-1].name and len(identity) == 16


def test_prompt_sources(tmp_path):
    pl.DataFrame({"question": ["a?", "b?"], "kind": ["x", "y"]}).write_csv(tmp_path / "p.csv")
    pl.DataFrame({"prompt": ["c?"]}).write_ndjson(tmp_path / "p.jsonl")
    from orchestra.sweeps.spec import PromptSource

    csv = load_prompts(
        PromptSource(file="p.csv", column="question", task_type_column="kind"), tmp_path, {}, "general"
    )
    assert csv == [("a?", "x"), ("b?", "y")]
    assert load_prompts(PromptSource(file="p.jsonl"), tmp_path, {}, "general") == [("c?", "general")]
    generated = PromptSource(
        generated={
            "template": "Explain {topic} to a {who}.",
            "values": {"topic": ["tides", "tax"], "who": ["child"]},
        }
    )
    assert load_prompts(generated, tmp_path, {}, "qa") == [
        ("Explain tides to a child.", "qa"),
        ("Explain tax to a child.", "qa"),
    ]
    with pytest.raises(ValueError, match="exactly one of"):
        PromptSource(dataset="x", file="y")


def test_bad_sweep_files_name_the_key(tmp_path):
    path = write_sweep(tmp_path, grid={})
    data = yaml.safe_load(path.read_text())
    data["gird"] = {}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"gird: unknown key \(allowed here: arms, concurrency, config"):
        load_sweep(path)


def test_dry_run_prints_arms_calls_and_exact_replay_cost(tmp_path, empty_store_template):
    path = write_sweep(
        tmp_path,
        arms=[
            {"name": "gpt4", "routing.rules": [{"providers": ["gpt-4"]}]},
            {
                "name": "three",
                "routing.rules": [
                    {"providers": ["gpt-4", "mixtral-8x7b", "mistral-7b"], "require_consensus": True}
                ],
            },
        ],
    )
    summary = run_sweep(
        path, dry_run=True, tracking=sweep_tracking(tmp_path, empty_store_template), progress=False
    )
    plans = {p.arm.label: p for p in summary.plans}
    assert plans["gpt4"].calls == 6 and plans["three"].calls == 18
    assert plans["three"].cost_usd > plans["gpt4"].cost_usd > 0 and not plans["gpt4"].cost_is_estimate
    assert MlflowStore(sweep_tracking(tmp_path, empty_store_template)).runs() == []  # a dry run logs nothing


def test_sweep_runs_every_arm_under_one_parent_with_a_summary(tmp_path, empty_store_template):
    tracking = sweep_tracking(tmp_path, empty_store_template)
    path = write_sweep(
        tmp_path, grid={"routing.rules": [[{"providers": ["gpt-4"]}], [{"providers": ["mistral-7b"]}]]}
    )
    summary = run_sweep(path, tracking=tracking, progress=False)
    store = MlflowStore(tracking)
    children = store.runs(f"tags.`mlflow.parentRunId` = '{summary.parent_run_id}'")
    assert len(children) == 2 and all(c["status"] == "FINISHED" for c in children)
    assert summary.table.height == 2 and set(summary.table["requests"]) == {6}
    assert {c["metrics"]["requests"] for c in children} == {6.0}
    artifacts = {a.path for a in store.client.list_artifacts(summary.parent_run_id, "sweep")}
    assert artifacts == {"sweep/summary.csv", "sweep/summary.html", "sweep/frontier.png"}
    again = run_sweep(path, tracking=tracking, progress=False)  # nothing left to do
    assert again.parent_run_id == summary.parent_run_id and len(again.skipped) == 2


def test_an_interrupted_sweep_resumes_without_double_counting(tmp_path, empty_store_template):
    tracking = sweep_tracking(tmp_path, empty_store_template)
    (tmp_path / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///mlflow.db\nartifact_location: artifacts\nspool_dir: spool\n"
        "experiment: sweeps\ntrace_writer: thread\n"
    )
    path = write_sweep(
        tmp_path,
        arms=[{"name": f"arm{i}", "routing.rules": [{"providers": [p]}]} for i, p in enumerate(SMALL)],
        time_scale=0.01,
        limit=12,
        concurrency=1,
    )
    # The second arm's provider stalls in the child (its simulated latency scaled a millionfold),
    # so the kill always finds exactly the first arm finished, however loaded the machine is.
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config["models"]["mixtral-8x7b"]["time_scale"] = "${ORCH_TEST_SWEEP_STALL:-0.01}"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    code = textwrap.dedent(f"""
        from orchestra.sweeps import run_sweep
        run_sweep({str(path)!r}, progress=False)
    """)
    environment = {**os.environ, "MLFLOW_TRACKING_URI": "", "ORCH_TEST_SWEEP_STALL": "1e6"}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=environment)
    store = MlflowStore(tracking)
    for _ in range(600):  # poll until the first arm has finished (at most ~2 minutes)
        finished = [r for r in store.runs("tags.`orchestra.kind` = 'sweep-arm'") if r["status"] == "FINISHED"]
        if finished or process.poll() is not None:
            break
        time.sleep(0.2)
    assert len(finished) == 1 and process.poll() is None  # the child is stalled in the second arm
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = [r for r in store.runs("tags.`orchestra.kind` = 'sweep-arm'") if r["status"] != "FINISHED"]

    summary = run_sweep(path, tracking=tracking, progress=False)
    assert summary.skipped == ["arm0,seed=0"]
    assert summary.table.height == 3 and summary.table["arm"].to_list() == [
        "arm0,seed=0",
        "arm1,seed=0",
        "arm2,seed=0",
    ]
    assert set(summary.table["requests"]) == {12}  # each arm counted once, in full
    for run in interrupted:  # closed by the recovery of the killed process's journal, then superseded
        again = store.client.get_run(run["run_id"])
        assert again.data.tags.get("orchestra.superseded") == "true" and again.info.status == "FAILED"
        assert int(again.data.tags["orchestra.recovered_records"]) >= 0
    assert len(store.runs("tags.`orchestra.kind` = 'sweep'")) == 1  # the same parent run
