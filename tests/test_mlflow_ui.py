"""The MLflow UI, for real: `orchestra ui` serves a store holding a small logged sweep, and headless
Chromium (Debian's package) renders the experiment, a run and its request traces. The pages'
rendered text is checked (the traces table shows each request's quality assessment), and
screenshots are kept in test-artifacts/ui/."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestra.sweeps import run_sweep
from orchestra.tracking.store import MlflowStore
from tests.conftest import ROOT
from tests.test_sweeps import sweep_tracking, write_sweep

ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--virtual-time-budget=15000",
    "--window-size=1400,1000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("Chromium is not installed: run scripts/install-test-services.sh (Debian package chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def render(url: str, profile: Path, screenshot: Path) -> str:
    """The page's visible text after its scripts ran (and a screenshot of it)."""
    browser = chromium()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    dom = re.sub(r"<style[^>]*>.*?</style>|<script[^>]*>.*?</script>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


@pytest.fixture(scope="module")
def served(tmp_path_factory, empty_store_template):
    folder = tmp_path_factory.mktemp("ui")
    # every request's trace is rendered (and checked) on the traces page
    tracking = sweep_tracking(folder, empty_store_template).model_copy(update={"traces": "all"})
    path = write_sweep(
        folder,
        arms=[
            {"name": "ui-gpt-4", "routing.rules": [{"providers": ["gpt-4"]}]},
            {"name": "ui-mistral", "routing.rules": [{"providers": ["mistral-7b"]}]},
        ],
        limit=5,
    )
    summary = run_sweep(path, tracking=tracking, progress=False)
    (folder / "mlflow.yaml").write_text(
        f"tracking_uri: {tracking.tracking_uri}\nartifact_location: {tracking.artifact_location}\n"
        "experiment: sweeps\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestra",
            "ui",
            "--tracking",
            str(folder / "mlflow.yaml"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("the MLflow server did not start: " + (server.stdout.read() if server.stdout else ""))
    store = MlflowStore(tracking)
    arms = store.runs(f"tags.`mlflow.parentRunId` = '{summary.parent_run_id}'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield {
        "url": f"http://127.0.0.1:{port}",
        "experiment": store.experiment_id,
        "arms": arms,
        "profile": folder / "chrome",
        "uri": tracking.tracking_uri,
    }
    os.killpg(server.pid, 15)
    server.wait(30)


def test_experiment_page_lists_the_sweep(served):
    text = render(
        f"{served['url']}/#/experiments/{served['experiment']}/runs",
        served["profile"],
        ARTIFACTS / "experiment-runs.png",
    )
    assert "test-sweep" in text and "3 matching runs" in text  # the parent and its two arms
    assert (ARTIFACTS / "experiment-runs.png").stat().st_size > 10_000


def test_compare_page_puts_the_arms_side_by_side(served):
    import json
    from urllib.parse import quote

    ids = [run["run_id"] for run in served["arms"]]
    query = f"runs={quote(json.dumps(ids))}&experiments={quote(json.dumps([served['experiment']]))}"
    text = render(f"{served['url']}/#/compare-runs?{query}", served["profile"], ARTIFACTS / "compare.png")
    assert "Comparing 2 Runs" in text
    for expected in ("ui-gpt-4,seed=0", "ui-mistral,seed=0", "arm.routing.rules", "requests"):
        assert expected in text, expected


def test_run_page_shows_params_and_metrics(served):
    arm = next(run for run in served["arms"] if run["name"].startswith("ui-gpt-4"))
    text = render(
        f"{served['url']}/#/experiments/{served['experiment']}/runs/{arm['run_id']}",
        served["profile"],
        ARTIFACTS / "run.png",
    )
    assert "ui-gpt-4,seed=0" in text
    for metric in ("requests", "cost_usd_mean", "sweep.win_rate", "quality_mean"):
        assert metric in text, metric
    for param in ("routing.rules", "arm.seed", "models.gpt-4.default_model"):
        assert param in text, param


def test_request_traces_are_rendered(served):
    arm = next(run for run in served["arms"] if run["name"].startswith("ui-mistral"))
    text = render(
        f"{served['url']}/#/experiments/{served['experiment']}/runs/{arm['run_id']}/traces",
        served["profile"],
        ARTIFACTS / "run-traces.png",
    )
    assert "5 of 5" in text  # every request of the arm is a trace
    assert '"prompt":' in text and '"response":' in text and "OK" in text


def test_trace_table_shows_the_quality_assessment(served):
    from mlflow.tracking import MlflowClient

    arm = next(run for run in served["arms"] if run["name"].startswith("ui-mistral"))
    traces = MlflowClient(served["uri"]).search_traces(locations=[served["experiment"]], run_id=arm["run_id"])
    labels = [a.value for t in traces for a in t.info.assessments if a.name == "quality"]
    assert len(labels) == 5  # every request's judge label is an assessment on its trace
    text = render(
        f"{served['url']}/#/experiments/{served['experiment']}/runs/{arm['run_id']}/traces",
        served["profile"],
        ARTIFACTS / "run-traces-quality.png",
    )
    assert "Assessments (1/1)" in text  # the quality column, shown by default
    shown = re.search(r"quality AVG ([0-9.]+)", text)
    assert shown is not None, text[:2000]
    assert float(shown.group(1)) == pytest.approx(sum(labels) / len(labels), abs=0.01)
