"""Routing strategies replayed on AlpacaEval: win rate, cost and who gets the traffic.

The 403 DEV prompts are split in two halves by a hash of the prompt. History is warmed on the
first half (every one of the 7 models answered every prompt, as an exploration sweep would log),
and each strategy then routes the second half through `Orchestra.process_request` (replayed
providers, task type = AlpacaEval subset, complexity from the heuristic), learning online as
it goes. Baselines: every single model and the oracle on the same half.

    .venv/bin/python benchmarks/routing_eval.py
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
from alpaca import DATA, offline_config

from orchestra import ModelRequest, Orchestra, TrackingSettings
from orchestra.analysis.winrate import WinRate, win_rate

PROVIDERS = {name: model["model"] for name, model in offline_config()["models"].items()}
STRATEGIES = {
    "rules (always GPT-4)": {"default_strategy": "rules"},
    "random": {"default_strategy": "random"},
    "performance_based": {"default_strategy": "performance_based"},
    "performance_based (quality only)": {
        "default_strategy": "performance_based",
        "performance": {"weights": {"quality": 1.0, "cost": 0.0, "latency": 0.0}},
    },
    "cost_aware (target 0.18)": {"default_strategy": "cost_aware", "cost_aware": {"target_quality": 0.18}},
}


def config(routing: dict) -> dict:
    return offline_config(
        {
            "rules": [{"providers": list(PROVIDERS)}],
            "complexity_threshold": 0.5,
            "performance": {"min_samples": 10, "load_history": False, **routing.pop("performance", {})},
            **routing,
        }
    )


def half(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 2


async def warm(orch: Orchestra, prompts: list[str], groups: dict[str, str]) -> None:
    """What an exploration sweep over the first half would have logged: every model on every prompt."""
    for prompt in prompts:
        assessment = await orch.task_router.assess(prompt, groups[prompt])
        for name in PROVIDERS:
            response = await orch.model_registry.get(name).generate(ModelRequest(prompt=prompt))
            orch.task_router.history.add(
                groups[prompt],
                assessment.complexity.value,
                name,
                ok=True,
                latency_ms=response.latency_ms,
                cost_usd=response.cost_usd,
                quality=response.metadata["quality"],
            )


async def run(name: str, routing: dict, folder: Path) -> tuple[WinRate, float, Counter]:
    tracking = TrackingSettings(enabled=False, base_dir=folder)
    orch = Orchestra(config(dict(routing)), tracking=tracking)
    dataset = next(iter(orch.datasets.values()))
    groups = dataset.groups()
    prompts = dataset.prompts()
    await warm(orch, [p for p in prompts if half(p) == 0], groups)
    results = [
        await orch.process_request(p, task_type=groups[p], user_id="bench") for p in prompts if half(p) == 1
    ]
    orch.close()
    metadata = [r["metadata"] for r in results]
    shares = Counter(m["answered_by"] for m in metadata)
    return win_rate(m["quality"] for m in metadata), float(np.mean([m["cost_usd"] for m in metadata])), shares


def baselines(prompts: list[str]) -> list[tuple[str, WinRate, float]]:
    frame = pl.read_parquet(DATA)
    frame = frame.filter(pl.col("instruction").is_in(prompts)).with_columns(
        (pl.col("preference") - 1).alias("q")
    )
    rows = [
        (f"single: {name}", win_rate(frame.filter(pl.col("model") == model)["q"]), None)
        for name, model in PROVIDERS.items()
    ]
    oracle = (
        frame.filter(pl.col("model").is_in(list(PROVIDERS.values())))
        .group_by("instruction")
        .agg(pl.col("q").max())
    )
    rows.append(("oracle (best of 7 per prompt)", win_rate(oracle["q"]), None))
    return rows


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, routing in STRATEGIES.items():
            results[name] = asyncio.run(run(name, routing, Path(folder)))
    prompts = pl.read_parquet(DATA)["instruction"].unique().to_list()
    evaluation = [p for p in prompts if half(p) == 1]
    print(f"{'strategy':<36} {'win rate vs GPT-4 Turbo [95% CI]':<34} {'$/request':>10}  share of requests")
    for name, (rate, cost, shares) in results.items():
        total = sum(shares.values())
        share_text = ", ".join(f"{p} {c / total:.0%}" for p, c in shares.most_common())
        print(f"{name:<36} {rate!s:<34} {cost:>10.5f}  {share_text}")
    for name, rate, _ in baselines(evaluation):
        print(f"{name:<36} {rate!s:<34}")
    warmed = len(prompts) - len(evaluation)
    print(f"{len(evaluation)} evaluation prompts (history warmed on the other {warmed}).")
    rate, cost, _ = results["performance_based"]
    print(f"RESULT performance_based_winrate {rate.percent:.2f}")
    print(f"RESULT performance_based_cost_per_1k {cost * 1000:.3f}")


if __name__ == "__main__":
    main()
