"""The improvement loop on AlpacaEval: explore, learn a router, compare it with the shipped
config on held-out prompts, and report whether the config would be written back.

Every provider answers every prompt once (replayed, logged to a temporary MLflow store); the
kNN router is fitted on half the prompts (cost weight by 5-fold cross-validation) and both
configs answer the other half through `process_request`.

    .venv/bin/python benchmarks/learned_routing.py
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from orchestra import TrackingSettings
from orchestra.analysis.requests import load_requests
from orchestra.config.loader import load_settings
from orchestra.improve import explore, improve_async, training_table
from orchestra.improve.command import dataset_prompts

ROOT = Path(__file__).resolve().parents[1]


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        shutil.copy(ROOT / "config.yaml", base / "config.yaml")
        (base / "data").symlink_to(ROOT / "data")
        tracking = TrackingSettings(base_dir=base, trace_writer="thread").resolved()
        prompts = dataset_prompts(load_settings(base / "config.yaml"))
        started = time.perf_counter()
        run_id = await explore(base / "config.yaml", prompts, tracking)
        explored = time.perf_counter() - started
        table = training_table(load_requests(run_ids=[run_id], tracking=tracking))
        started = time.perf_counter()
        report = await improve_async(base / "config.yaml", table, tracking=tracking)
        improved = time.perf_counter() - started
    with pl.Config(tbl_rows=20):
        print("cross-validation on the training prompts (out of fold):")
        print(report.cross_validation)
    shares = report.learned["answered_by"].value_counts(normalize=True).sort("proportion", descending=True)
    print("learned router's picks on held-out prompts:", dict(shares.iter_rows()))
    print(report)
    held_out = table.filter(pl.col("prompt").is_in(report.learned["prompt"].to_list()))
    singles = held_out.group_by("provider").agg(pl.col("quality").mean()).sort("quality", descending=True)
    oracle = held_out.group_by("prompt").agg(pl.col("quality").max())["quality"].mean()
    print("single providers on the same held-out prompts:", {p: round(q, 4) for p, q in singles.iter_rows()})
    print(f"oracle (best provider per prompt): {oracle:.4f}")
    print(f"exploration {explored:.1f} s ({len(prompts)} prompts x 7 providers), improve {improved:.1f} s")
    print(f"RESULT learned_quality {report.quality.estimate_b:.4f}")
    print(f"RESULT current_quality {report.quality.estimate_a:.4f}")
    print(f"RESULT quality_difference_ci_low {report.quality.ci_low:.4f}")
    print(f"RESULT learned_cost_per_1k_usd {report.cost.estimate_b * 1000:.3f}")
    print(f"RESULT current_cost_per_1k_usd {report.cost.estimate_a * 1000:.3f}")
    print(f"RESULT best_single_quality {singles['quality'][0]:.4f}")
    print(f"RESULT accepted {int(report.accepted)}")


if __name__ == "__main__":
    asyncio.run(main())
