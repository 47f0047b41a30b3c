"""The improvement loop on a recorded table, as `orchestra improve --explore` runs it: explore,
fit / select / confirm, decide, and report whether the config would be written back.

Every provider answers every prompt once (replayed, logged to a temporary MLflow store); the
loop splits the prompts into fit, select and confirm (by hash), checks power, fits the learned
router and the cascade, tunes them on the select split for the configured target (default: the
best quality at no more than the current config's cost), and lets the current and the candidate
config answer the confirm prompts through `process_request`. The candidate's policy is checked
not to have seen any confirm prompt. Single models and the oracle are shown on the same confirm
prompts.

    .venv/bin/python benchmarks/learned_routing.py [--data data/gsm8k_routellm/responses.parquet]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from recorded import load_recorded

from orchestra import TrackingSettings
from orchestra.analysis.requests import load_requests
from orchestra.config.loader import load_settings
from orchestra.improve import explore, improve_async, training_table
from orchestra.improve.command import dataset_prompts


async def run(data_path: str | None) -> None:
    data = load_recorded(data_path)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = base / "config.yaml"
        config.write_text(yaml.safe_dump(data.config), encoding="utf-8")
        tracking = TrackingSettings(base_dir=base, trace_writer="thread").resolved()
        prompts = dataset_prompts(load_settings(config))
        started = time.perf_counter()
        run_id = await explore(config, prompts, tracking)
        explored = time.perf_counter() - started
        table = training_table(load_requests(run_ids=[run_id], tracking=tracking))
        started = time.perf_counter()
        report = await improve_async(config, table, tracking=tracking)
        improved = time.perf_counter() - started
    confirm = report.split.texts("confirm")
    candidate = report.candidate
    if candidate is not None:
        model = candidate.policy if candidate.policy is not None else candidate.cascade.quality_model
        model.assert_unseen(confirm)  # raises if the candidate was fitted on a confirm prompt
    print(f"{data.name}: {len(prompts)} prompts x {len(data.providers)} providers")
    print(report)
    if report.decision is not None:
        shares = (
            report.learned["answered_by"].value_counts(normalize=True).sort("proportion", descending=True)
        )
        print("candidate's answers on the confirm prompts:", {p: round(s, 3) for p, s in shares.iter_rows()})
    held_out = table.filter(pl.col("prompt").is_in(confirm))
    singles = held_out.group_by("provider").agg(pl.col("quality").mean(), (pl.col("cost_usd").mean() * 1000))
    print("single providers on the confirm prompts:")
    for provider, quality, cost in singles.sort("quality", descending=True).iter_rows():
        print(f"  {provider:<16} quality {quality:.4f}  ${cost:.4f}/1k")
    oracle = held_out.group_by("prompt").agg(pl.col("quality").max())["quality"].mean()
    print(f"oracle (best provider per prompt): {oracle:.4f}")
    print(f"exploration {explored:.1f} s, improve {improved:.1f} s")
    status = {"accepted": 1, "proposed": 0, "rejected": 0}[report.status]
    if report.decision is not None:
        print(f"RESULT {data.name}_candidate_quality {report.quality.estimate_b:.4f}")
        print(f"RESULT {data.name}_current_quality {report.quality.estimate_a:.4f}")
        print(f"RESULT {data.name}_quality_difference_ci_low {report.quality.ci_low:.4f}")
        print(f"RESULT {data.name}_candidate_cost_per_1k_usd {report.cost.estimate_b * 1000:.4f}")
        print(f"RESULT {data.name}_current_cost_per_1k_usd {report.cost.estimate_a * 1000:.4f}")
        print(f"RESULT {data.name}_p_replicates {report.p_replicates:.4f}")
    print(f"RESULT {data.name}_best_single_quality {float(np.max(singles['quality'].to_numpy())):.4f}")
    print(f"RESULT {data.name}_accepted {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="a recorded table (default: the shipped AlpacaEval data)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.data))


if __name__ == "__main__":
    main()
