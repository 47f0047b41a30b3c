"""Does a written-back config replicate? The write-back gate's error rates, measured.

For each repetition, the shipped data's prompts are split into two halves by a seeded hash. The
whole improvement loop (fit / select / confirm split, power check, candidates, gate) runs on one
half, with the shipped config's defaults; when it writes a config back, that config is evaluated
against the current config on the other half, which the loop never saw. A write-back is false
when the written config's quality there is worse than the current config's by more than
`improvement.quality_margin`.

The loop runs on the recorded tables directly (`orchestra.improve.offline_cycle`: the same
code as `orchestra improve`, with the candidate replayed from the table instead of through
`process_request`, and no MLflow logging), so hundreds of repetitions fit on two cores.

    .venv/bin/python benchmarks/improve_replication.py [--repetitions 1200] [--dataset gsm8k]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
from alpaca import ROOT
from statsmodels.stats.proportion import proportion_confint

from orchestra.config.loader import load_settings
from orchestra.config.schema import Settings
from orchestra.improve import offline_cycle, recorded_table, replay_config
from orchestra.improve.command import dataset_prompts
from orchestra.routing.outcomes import Outcomes

CONFIGS = {"alpacaeval": ROOT / "config.yaml", "gsm8k": ROOT / "config.gsm8k.yaml"}


@dataclass
class Replication:
    status: str
    kind: str | None
    gain: float = float("nan")  # candidate - current quality on the other half
    saving: float = float("nan")  # 1 - candidate cost / current cost on the other half


async def recorded(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every provider's recorded answer to every prompt, and the current config's answers."""
    prompts = dataset_prompts(settings)
    return await recorded_table(settings, prompts), await replay_config(settings, prompts)


def half(prompt: str, repetition: int) -> int:
    return int(hashlib.sha256(f"replication-{repetition}:{prompt}".encode()).hexdigest(), 16) % 2


def replicate(settings: Settings, table: pl.DataFrame, current: pl.DataFrame, repetition: int) -> Replication:
    providers = sorted(p for p in table["provider"].unique().to_list() if p in settings.models)
    side = {p: half(p, repetition) for p in table["prompt"].unique().to_list()}
    mine = table.filter(pl.col("prompt").replace_strict(side, return_dtype=pl.Int64) == 0)
    other = [p for p, h in side.items() if h == 1]
    options = settings.improvement.model_copy(update={"split_seed": repetition})
    cycle = offline_cycle(settings.routing, options, mine, current, providers)
    if cycle.decision is None or cycle.decision.status != "accepted":
        status = cycle.decision.status if cycle.decision is not None else "rejected"
        return Replication(status, cycle.plan.candidate.kind if cycle.plan.candidate else None)
    assert cycle.plan.candidate is not None
    outcomes = Outcomes.from_table(table, providers).subset(other)
    quality, cost = cycle.plan.candidate.route(outcomes)
    baseline = current.filter(pl.col("prompt").is_in(other)).sort(
        pl.col("prompt").replace_strict({p: i for i, p in enumerate(other)}, return_dtype=pl.Int64)
    )
    gain = float(np.nanmean(quality - baseline["quality"].to_numpy()))
    saving = 1.0 - float(cost.mean()) / float(baseline["cost_usd"].mean())
    return Replication("accepted", cycle.plan.candidate.kind, gain, saving)


def report(name: str, settings: Settings, results: list[Replication], seconds: float) -> None:
    margin = settings.improvement.quality_margin
    n = len(results)
    written = [r for r in results if r.status == "accepted"]
    proposed = sum(r.status == "proposed" for r in results)
    false = [r for r in written if r.gain < -margin]
    w_low, w_high = proportion_confint(len(written), n, method="wilson")
    print(
        f"\n{name}: {n} repetitions in {seconds:.0f} s (margin {margin:g}, "
        f"confidence {settings.improvement.auto_apply_threshold:g})"
    )
    print(
        f"  written back {len(written)} ({len(written) / n:.1%} [{w_low:.1%}, {w_high:.1%}]), "
        f"proposed only {proposed}, rejected {n - len(written) - proposed}"
    )
    kinds = {k: sum(r.kind == k for r in written) for k in ("learned", "cascade")}
    false_kinds = {k: sum(r.kind == k for r in false) for k in ("learned", "cascade")}
    print(f"  written-back candidates: {kinds}, of which false: {false_kinds}")
    if written:
        f_low, f_high = proportion_confint(len(false), len(written), method="wilson")
        gains = np.array([r.gain for r in written])
        savings = np.array([r.saving for r in written])
        spread = 1.96 * gains.std(ddof=1) / np.sqrt(gains.size) if gains.size > 1 else float("nan")
        print(
            f"  false write-backs {len(false)} of {len(written)}: {len(false) / len(written):.1%} "
            f"[{f_low:.1%}, {f_high:.1%}] (Wilson 95% CI)"
        )
        print(
            f"  realised quality gain on the other half {gains.mean():+.4f} [{gains.mean() - spread:+.4f}, "
            f"{gains.mean() + spread:+.4f}], cost saving {np.nanmean(savings):.1%}"
        )
        false_rate, gain, saving = len(false) / len(written), float(gains.mean()), float(np.nanmean(savings))
        false_high = f_high
    else:
        print("  no write-back: the false write-back rate is undefined (0 of 0)")
        false_rate, gain, saving, false_high = float("nan"), float("nan"), float("nan"), float("nan")
    print(f"RESULT {name}_write_back_rate {len(written) / n:.4f}")
    print(f"RESULT {name}_false_write_back_rate {false_rate:.4f}")
    print(f"RESULT {name}_false_write_back_rate_ci_high {false_high:.4f}")
    print(f"RESULT {name}_mean_realised_gain {gain:.4f}")
    print(f"RESULT {name}_mean_realised_saving {saving:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=1200)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), action="append")
    args = parser.parse_args()
    pooled: list[Replication] = []
    for name in args.dataset or sorted(CONFIGS):
        settings = load_settings(CONFIGS[name])
        table, current = asyncio.run(recorded(settings))
        started = time.perf_counter()
        results = [replicate(settings, table, current, r) for r in range(args.repetitions)]
        report(name, settings, results, time.perf_counter() - started)
        pooled += results
    margin = load_settings(CONFIGS["alpacaeval"]).improvement.quality_margin
    written = [r for r in pooled if r.status == "accepted"]
    false = sum(r.gain < -margin for r in written)
    low, high = proportion_confint(false, len(written), method="wilson") if written else (math.nan, math.nan)
    print(
        f"\nboth datasets: {len(written)} write-backs of {len(pooled)} runs, {false} false "
        f"({false / max(len(written), 1):.1%} [{low:.1%}, {high:.1%}])"
    )
    print(f"RESULT write_back_rate {len(written) / len(pooled):.4f}")
    print(f"RESULT false_write_back_rate {false / len(written) if written else math.nan:.4f}")
    print(f"RESULT false_write_back_rate_ci_high {high:.4f}")
    print(f"RESULT mean_realised_gain {np.mean([r.gain for r in written]) if written else math.nan:.4f}")


if __name__ == "__main__":
    main()
