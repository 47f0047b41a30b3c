"""The routing, consensus and learned-routing benchmarks run on any recorded table (`--data`),
including one with an unlabelled row and an empty answer: the unlabelled answer is left out and
counted, the empty one is a counted failure scoring 0, not a silent success."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from .conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 GSM8K prompts, two models; one Mixtral answer unlabelled, one GPT-4 answer empty."""
    frame = pl.read_parquet(ROOT / "data" / "gsm8k_routellm" / "responses.parquet")
    prompts = frame["prompt"].unique(maintain_order=True).head(100).to_list()
    frame = frame.filter(pl.col("prompt").is_in(prompts)).with_row_index()
    evaluation = next(p for p in prompts if _evaluation_half(p))
    frame = frame.with_columns(
        pl.when((pl.col("prompt") == evaluation) & pl.col("model").str.contains("Mixtral"))
        .then(None)
        .otherwise(pl.col("correct"))
        .alias("correct"),
        pl.when((pl.col("prompt") == evaluation) & pl.col("model").str.contains("gpt-4"))
        .then(pl.lit(""))
        .otherwise(pl.col("output"))
        .alias("output"),
    ).drop("index")
    path = tmp_path_factory.mktemp("recorded") / "small.parquet"
    frame.write_parquet(path)
    return path


def _evaluation_half(prompt: str) -> bool:
    import hashlib

    return int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 2 == 1


def run(script: str, *args: str) -> str:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=BENCHMARKS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def results(output: str) -> dict[str, float]:
    return {
        line.split()[1]: float(line.split()[2]) for line in output.splitlines() if line.startswith("RESULT ")
    }


def test_routing_benchmark_flags_the_empty_answer_and_skips_the_unlabelled_one(small_table):
    output = run("routing_eval.py", "--data", str(small_table))
    found = results(output)
    name = small_table.parent.name
    assert found[f"{name}_gpt-4-1106-preview_failures"] == 1  # the empty answer: a failure
    assert found[f"{name}_gpt-4-1106-preview_unlabelled"] == 0
    assert found[f"{name}_mixtral-8x7b-instruct-v0.1_failures"] == 0
    assert found[f"{name}_mixtral-8x7b-instruct-v0.1_unlabelled"] == 1  # left out, and counted
    assert f"{name}_oracle_quality" in found and f"{name}_cascade_quality" in found
    assert "APGR" in output and "CPT(50%)" in output  # a strong/weak pair: RouteLLM's metrics


def test_consensus_and_learned_routing_benchmarks_run_on_the_same_table(small_table):
    consensus = run("consensus_eval.py", "--data", str(small_table), "--lexical-only")
    assert "confidence (model)" in consensus and "ECE" in consensus
    learned = run("learned_routing.py", "--data", str(small_table))
    assert "splits: fit" in learned and "RESULT" in learned and "decision:" in learned
