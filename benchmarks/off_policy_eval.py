"""Can off-policy estimates be trusted? IPS, SNIPS and doubly robust against full information.

On recorded data every provider's label is known for every prompt, so the true value of any
router is known. Each simulation splits the prompts in two halves (seeded hash), fits the
learned router (kNN, calibrated) on one half, and simulates live traffic on the other: a
randomised logging policy picks one provider per prompt (epsilon-greedy around the shipped
config's first provider, epsilon 0.5, so every provider has propensity >= 0.5 / K) and only
that provider's label is "logged". IPS, SNIPS and DR (reward model: the learned router's own
calibrated quality estimate) then estimate the learned router's value from those logs, and are
compared with its true value on the same prompts: bias, RMSE and 95% CI coverage over the
simulations.

    .venv/bin/python benchmarks/off_policy_eval.py [--simulations 300] [--dataset gsm8k]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib

import numpy as np
import polars as pl
from alpaca import ROOT

from orchestra.config.loader import load_settings
from orchestra.improve import recorded_table
from orchestra.improve.command import dataset_prompts
from orchestra.improve.off_policy import estimate
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.outcomes import Outcomes

CONFIGS = {"alpacaeval": ROOT / "config.yaml", "gsm8k": ROOT / "config.gsm8k.yaml"}
EPSILON = 0.5


def side(prompt: str, simulation: int) -> int:
    return int(hashlib.sha256(f"ope-{simulation}:{prompt}".encode()).hexdigest(), 16) % 2


def simulate(
    table: pl.DataFrame, outcomes: Outcomes, logging_choice: str, simulation: int
) -> dict[str, tuple]:
    """One simulation: (estimate, CI low, CI high, truth) for IPS, SNIPS and DR."""
    halves = {p: side(p, simulation) for p in outcomes.prompts}
    train = [p for p in outcomes.prompts if halves[p] == 0]
    test = outcomes.subset([p for p in outcomes.prompts if halves[p] == 1])
    policy = KNNRoutingPolicy.fit(table.filter(pl.col("prompt").is_in(train)), providers=outcomes.providers)
    columns = np.array([test.column(p) for p in policy.choose(test.prompts)])
    truth = float(np.nanmean(test.routed(columns)[0]))
    k = len(outcomes.providers)
    greedy = outcomes.column(logging_choice)
    propensity = np.full((len(test), k), EPSILON / k)
    propensity[:, greedy] += 1 - EPSILON
    rng = np.random.default_rng(simulation)
    logged = np.array([rng.choice(k, p=row) for row in propensity])
    rewards, _ = test.routed(logged)
    rows = np.arange(len(test))
    quality, _ = policy.estimates(test.prompts)
    column_of = [policy.providers.index(p) for p in outcomes.providers]  # outcomes column -> policy column
    predicted = quality[:, column_of]
    result = estimate(
        rewards,
        propensity[rows, logged],
        logged == columns,
        predicted_logged=predicted[rows, logged],
        predicted_target=predicted[rows, columns],
    )
    return {
        "ips": (result.ips, *result.ips_ci, truth),
        "snips": (result.snips, *result.snips_ci, truth),
        "dr": (result.dr, *result.dr_ci, truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=300)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), action="append")
    args = parser.parse_args()
    summary: dict[str, list[tuple]] = {"ips": [], "snips": [], "dr": []}
    for name in args.dataset or sorted(CONFIGS):
        settings = load_settings(CONFIGS[name])
        table = asyncio.run(recorded_table(settings, dataset_prompts(settings)))
        outcomes = Outcomes.from_table(table)
        logging_choice = settings.routing.rules[-1].providers[0]
        runs = [simulate(table, outcomes, logging_choice, s) for s in range(args.simulations)]
        print(
            f"\n{name}: {args.simulations} simulations, {len(outcomes)} prompts, {len(outcomes.providers)} "
            f"providers, logging epsilon-greedy (epsilon {EPSILON}) around {logging_choice}"
        )
        print(f"  {'estimator':<8} {'bias':>9} {'RMSE':>8} {'95% CI coverage':>16} {'mean CI width':>14}")
        for estimator in ("ips", "snips", "dr"):
            values = np.array([run[estimator] for run in runs])
            error = values[:, 0] - values[:, 3]
            covered = (values[:, 1] <= values[:, 3]) & (values[:, 3] <= values[:, 2])
            width = float(np.mean(values[:, 2] - values[:, 1]))
            print(
                f"  {estimator:<8} {error.mean():>+9.4f} {np.sqrt(np.mean(error**2)):>8.4f} "
                f"{covered.mean():>16.1%} {width:>14.4f}"
            )
            summary[estimator] += [tuple(v) for v in values]
            print(f"RESULT {name}_{estimator}_rmse {np.sqrt(np.mean(error**2)):.4f}")
            print(f"RESULT {name}_{estimator}_coverage {covered.mean():.4f}")
    for estimator in ("ips", "snips", "dr"):
        values = np.array(summary[estimator])
        error = values[:, 0] - values[:, 3]
        covered = (values[:, 1] <= values[:, 3]) & (values[:, 3] <= values[:, 2])
        print(f"RESULT {estimator}_bias {error.mean():.4f}")
        print(f"RESULT {estimator}_rmse {np.sqrt(np.mean(error**2)):.4f}")
        print(f"RESULT {estimator}_coverage {covered.mean():.4f}")


if __name__ == "__main__":
    main()
