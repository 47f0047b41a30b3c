"""Sweeps across processes: the same sweep started twice runs each arm once; two sweeps starting
together on a store that does not exist yet both start (its schema is created once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from tests.conftest import ROOT
from tests.test_sweeps import SMALL, write_sweep

RUN = textwrap.dedent("""
    import sys
    from orchestra.sweeps import run_sweep
    summary = run_sweep(sys.argv[1], progress=False)
    print("ARMS", len(summary.table), sorted(set(summary.table["requests"].to_list())))
    print("PARENT", summary.parent_run_id)
""")


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(path)],
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""},
    )


def finish(process: subprocess.Popen[str]) -> dict[str, str]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in out.splitlines() if line.strip()}


def tracking_file(folder: Path, database: str) -> TrackingSettings:
    (folder / "mlflow.yaml").write_text(
        f"tracking_uri: sqlite:///{database}\nartifact_location: artifacts\nspool_dir: spool\n"
        "experiment: sweeps\ntrace_writer: thread\n"
    )
    return TrackingSettings(
        tracking_uri=f"sqlite:///{database}",
        artifact_location="artifacts",
        spool_dir="spool",
        experiment="sweeps",
        base_dir=folder,
    ).resolved()


@pytest.mark.slow
def test_the_same_sweep_started_twice_at_once_runs_each_arm_once(tmp_path, empty_store_template):
    (tmp_path / "mlflow.db").write_bytes(empty_store_template.read_bytes())
    tracking = tracking_file(tmp_path, "mlflow.db")
    path = write_sweep(
        tmp_path,
        arms=[{"name": f"arm{i}", "routing.rules": [{"providers": [p]}]} for i, p in enumerate(SMALL)],
        time_scale=0.01,
        limit=6,
        concurrency=1,
    )
    first, second = start(path), start(path)
    outputs = [finish(first), finish(second)]
    assert [o["ARMS"] for o in outputs] == ["3 [6]", "3 [6]"]  # both end with the full summary
    assert outputs[0]["PARENT"] == outputs[1]["PARENT"]
    store = MlflowStore(tracking)
    arm_runs = store.runs("tags.`orchestra.kind` = 'sweep-arm'")
    assert len(arm_runs) == 3 and all(run["status"] == "FINISHED" for run in arm_runs)  # each once
    assert len({run["tags"]["orchestra.arm_id"] for run in arm_runs}) == 3
    assert {run["metrics"]["requests"] for run in arm_runs} == {6.0}
    assert len(store.runs("tags.`orchestra.kind` = 'sweep'")) == 1


@pytest.mark.slow
def test_two_sweeps_on_a_fresh_store_both_start(tmp_path):
    tracking = tracking_file(tmp_path, "fresh/mlflow.db")  # does not exist yet
    path = write_sweep(tmp_path, arms=[{"name": "gpt4", "routing.rules": [{"providers": ["gpt-4"]}]}])
    other = path.with_name("other.yaml")
    other.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "name": "other-sweep"}))
    first, second = start(path), start(other)
    outputs = [finish(first), finish(second)]
    assert [o["ARMS"] for o in outputs] == ["1 [6]", "1 [6]"]
    assert len(MlflowStore(tracking).runs("tags.`orchestra.kind` = 'sweep'")) == 2
