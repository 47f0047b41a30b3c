"""Canary experiments on recorded answers: how often is a candidate that is not better promoted,
how soon is a worse one stopped, how often is a better one found?

Each scenario sets two recorded models against each other (the control's rule sends every
request to one, the candidate's to the other), so the true difference is known: the difference
of their mean recorded quality over the dataset's prompts. Each repetition is a new
randomisation (the assignment salt and the traffic are seeded): users send requests with prompts
drawn at random, are assigned by the salted hash, and get their arm's recorded answer; the
experiment's own monitor decides (`orchestra.experiments.replay_experiment`: the same code as
live traffic, without the engine). The planning sd is the control's sd on the recorded table.

- null scenarios (the candidate is not better: an A/A test, or a candidate slightly worse):
  every promotion is false; `false_promotion_rate` pools them. Cost and latency guardrails are
  off here, so that a promotion depends on the primary metric alone (the hardest case).
- the peer: the same traffic and looks with a fixed-sample z-test checked at every look ("peeking"),
  the mistake an always-valid test exists to avoid.
- worse and better scenarios: the stop rate and the requests it took; the promote rate (power).
- one experiment end to end through `Orchestra.start_experiment` and `process_request`
  (tracking off), compared with the table-based run on the same traffic.

    .venv/bin/python benchmarks/experiments.py [--repetitions 200] [--split 50]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
from alpaca import ROOT, offline_config
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from orchestra import Orchestra
from orchestra.config.experiments import CONTROL, ExperimentSettings
from orchestra.config.loader import load_settings
from orchestra.experiments import arm_answers, assign, plan_experiment, replay_experiment, true_difference
from orchestra.experiments.monitor import Observation
from orchestra.experiments.sequential import RunningMoments
from orchestra.experiments.simulate import traffic
from orchestra.improve.command import dataset_prompts
from orchestra.improve.data import recorded_table
from orchestra.tracking.settings import TrackingSettings

GSM8K = ROOT / "config.gsm8k.yaml"


@dataclass(frozen=True)
class Scenario:
    name: str
    dataset: str  # alpacaeval | gsm8k
    control: str
    candidate: str
    kind: str  # null | worse | better
    guardrails: dict[str, float | None]


NO_COST_GUARDS = {"cost": None, "latency_p95": None}
SCENARIOS = [
    Scenario("gsm8k_aa", "gsm8k", "gpt-4-turbo", "gpt-4-turbo", "null", NO_COST_GUARDS),
    Scenario("alpaca_aa", "alpacaeval", "mixtral-8x7b", "mixtral-8x7b", "null", NO_COST_GUARDS),
    Scenario("alpaca_gpt4_vs_gemini", "alpacaeval", "gemini-pro", "gpt-4", "null", NO_COST_GUARDS),
    Scenario("gsm8k_mixtral_worse", "gsm8k", "gpt-4-turbo", "mixtral-8x7b", "worse", {}),
    Scenario("alpaca_gpt35_worse", "alpacaeval", "gpt-4", "gpt-3.5-turbo", "worse", {}),
    Scenario("gsm8k_gpt4_better", "gsm8k", "mixtral-8x7b", "gpt-4-turbo", "better", NO_COST_GUARDS),
]


def settings_for(scenario: Scenario, split: float) -> ExperimentSettings:
    return ExperimentSettings(
        candidates={"candidate": {"overrides": {"routing.rules.0.providers": [scenario.candidate]}}},
        split={CONTROL: 100 - split, "candidate": split},
        guardrails=scenario.guardrails,
    )


async def tables() -> dict[str, dict[str, dict[str, Observation]]]:
    """Every provider's recorded outcome per prompt, per dataset."""
    found = {}
    for name, source in (("alpacaeval", offline_config()), ("gsm8k", GSM8K)):
        settings = load_settings(source)
        table = await recorded_table(settings, dataset_prompts(settings))
        found[name] = {p: arm_answers(table, p) for p in table["provider"].unique().to_list()}
    return found


def peeking(
    settings: ExperimentSettings, answers: dict[str, dict[str, Observation]], seed: int, limit: int
) -> bool:
    """The peer: a two-sided z-test on the primary metric at every look, no correction; True
    when it would have promoted (p < alpha with the candidate ahead) before `limit` requests."""
    prompts = sorted(set(answers[CONTROL]) & set(answers["candidate"]))
    shares = settings.shares()
    moments = {arm: RunningMoments() for arm in shares}
    salt = f"{settings.salt or 'peek'}:{seed}"
    for served, (user, prompt) in enumerate(traffic(prompts, seed=seed, users=5_000), start=1):
        if served > limit:
            return False
        arm = assign(user, experiment="peek", salt=salt, shares=shares).arm
        moments[arm].add(float(answers[arm][prompt].quality))
        control, candidate = moments[CONTROL], moments["candidate"]
        if served % settings.look_every or min(control.n, candidate.n) < settings.min_per_arm:
            continue
        se = math.sqrt(control.se2 + candidate.se2)
        if se > 0:
            z = (candidate.mean - control.mean) / se
            if z > 0 and 2 * stats.norm.sf(z) < settings.alpha:
                return True
    return False


async def end_to_end(split: float) -> tuple[str, int, str, int]:
    """One worse-candidate experiment through Orchestra, and the same traffic on the table."""
    raw = load_settings(GSM8K).model_dump(mode="python", by_alias=True, exclude_unset=True)
    raw["datasets"]["gsm8k"]["path"] = str(ROOT / "data" / "gsm8k_routellm" / "responses.parquet")
    orch = Orchestra(raw, tracking=TrackingSettings(enabled=False))
    scenario = SCENARIOS[3]
    settings = settings_for(scenario, split)
    experiment = orch.start_experiment("end-to-end", settings)
    prompts = sorted(orch.datasets["gsm8k"].prompts())
    sent = 0
    for user, prompt in traffic(prompts, seed=0, users=5_000):
        if experiment.decision is not None:
            break
        await experiment.process_request(prompt, user_id=user)
        sent += 1
    table = await recorded_table(orch.settings, [(p, "math") for p in prompts])
    answers = {
        CONTROL: arm_answers(table, scenario.control),
        "candidate": arm_answers(table, scenario.candidate),
    }
    replayed = replay_experiment(
        "end-to-end", settings, answers, seed=0, salt="end-to-end", plan=experiment.plan
    )
    experiment.close()
    await orch.aclose()
    assert experiment.decision is not None
    return experiment.decision.outcome, sent, replayed.decision.outcome, replayed.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--split", type=float, default=50.0, help="the candidate's share of traffic, in %%")
    args = parser.parse_args()
    started = time.perf_counter()
    recorded = asyncio.run(tables())
    rows, false_promotions, peeked, nulls, decided = [], 0, 0, 0, []
    for scenario in SCENARIOS:
        answers = {
            CONTROL: recorded[scenario.dataset][scenario.control],
            "candidate": recorded[scenario.dataset][scenario.candidate],
        }
        settings = settings_for(scenario, args.split)
        control_quality = np.array([o.quality for o in answers[CONTROL].values()], dtype=float)
        plan = plan_experiment(
            settings, sd=float(np.nanstd(control_quality, ddof=1)), basis="the recorded control"
        )
        outcomes = [
            replay_experiment(scenario.name, settings, answers, seed=s, plan=plan)
            for s in range(args.repetitions)
        ]
        counts = {
            k: sum(o.decision.outcome == k for o in outcomes) for k in ("promote", "stop", "inconclusive")
        }
        early = [o.requests for o in outcomes if o.decision.outcome in ("promote", "stop")]
        row = {
            "scenario": scenario.name,
            "true_difference": round(true_difference(answers, "candidate"), 4),
            "max_requests": plan.max_requests,
            "fixed_horizon": plan.fixed_horizon["candidate"],
            **{k: v / args.repetitions for k, v in counts.items()},
            "median_requests": float(np.median([o.requests for o in outcomes])),
            "median_requests_to_decision": float(np.median(early)) if early else math.nan,
        }
        if scenario.kind == "null":
            nulls += args.repetitions
            false_promotions += counts["promote"]
            peek = sum(peeking(settings, answers, s, plan.max_requests) for s in range(args.repetitions))
            peeked += peek
            row["peeking_promote"] = peek / args.repetitions
        else:
            decided += early
        rows.append(row)
        for key in ("promote", "stop", "inconclusive", "median_requests_to_decision"):
            print(f"RESULT {scenario.name}_{key} {row[key]:.4f}")
    with pl.Config(tbl_cols=-1, tbl_width_chars=200, tbl_rows=-1):
        print(pl.DataFrame(rows))
    _, high = proportion_confint(false_promotions, nulls, alpha=0.05, method="beta")
    print(f"RESULT false_promotion_rate {false_promotions / nulls:.4f}")
    print(f"RESULT false_promotion_rate_ci_high {high:.4f}")
    print(f"RESULT naive_peeking_false_promotion_rate {peeked / nulls:.4f}")
    print(f"RESULT median_requests_to_decision {float(np.median(decided)):.1f}")
    outcome, sent, replayed_outcome, replayed_sent = asyncio.run(end_to_end(args.split))
    print(f"end to end through Orchestra: {outcome} after {sent} requests", end="; ")
    print(f"on the recorded table: {replayed_outcome} after {replayed_sent}")
    print(f"RESULT end_to_end_agrees {int((outcome, sent) == (replayed_outcome, replayed_sent))}")
    print(f"RESULT end_to_end_requests_to_decision {sent}")
    elapsed = time.perf_counter() - started
    print(f"({elapsed:.0f} s, {args.repetitions} repetitions per scenario, candidate share {args.split:g}%)")


if __name__ == "__main__":
    main()
