"""Routing policies replayed on a recorded table: quality, cost, answer length, and the paired
difference against the best single model, on prompts no policy was trained or tuned on.

The prompts are split in two halves by a hash of the prompt. On the training half: the best
single model is chosen (not in hindsight), history is warmed for history-based routing (every
model's recorded answer, as an exploration sweep would log it), and the learned router and the
cascade are fitted (two thirds) and tuned (one third) for a budget of 10% of the strongest (most
expensive) model's cost. On the evaluation half every policy answers through
`Orchestra.process_request` (replayed providers; the strategies at their defaults), and is
scored with a 95% CI, the paired difference against that single model, its mean answer length,
failures (a replayed empty answer scores 0) and unlabelled answers (left out). A policy trained
on any evaluation prompt is refused. With two models (GSM8K) RouteLLM's metrics are added: APGR
and the share of strong-model calls needed for 50% / 80% of the quality gap, CPT(50%) / CPT(80%).

    .venv/bin/python benchmarks/routing_eval.py [--data data/gsm8k_routellm/responses.parquet]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
from recorded import PolicyRow, Recorded, load_recorded, print_table, score_policy

from orchestra import ModelRequest, Orchestra, TrackingSettings
from orchestra.config.loader import load_settings
from orchestra.improve import recorded_table
from orchestra.routing.budget import Target, calibrate_cost_weight
from orchestra.routing.calibration import reliability
from orchestra.routing.cascade import CascadePolicy, fit_cascade, frontier_stages
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.outcomes import Outcomes
from orchestra.routing.quality_gap import apgr, cpt, optimal_curve, strong_share_curve

BUDGET_SHARE = 0.10
Picks = dict[str, tuple[float | None, str, float | None]]


def routed_config(data: Recorded, routing: dict) -> dict:
    raw = {**data.config, "routing": {"rules": [{"providers": list(data.providers)}], **routing}}
    raw.setdefault("performance", {})
    return raw


async def route(
    config: dict, prompts: list[str], groups: dict[str, str], warm: list[str] | None = None
) -> Picks:
    """Every evaluation prompt through `process_request`; history warmed on `warm` first."""
    orch = Orchestra(config, tracking=TrackingSettings(enabled=False))
    for prompt in warm or []:
        assessment = await orch.task_router.assess(prompt, groups[prompt])
        for name in orch.model_registry.names():
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
    picks: Picks = {}
    for prompt in prompts:
        result = await orch.process_request(prompt, task_type=groups[prompt], user_id="bench")
        meta = result["metadata"]
        picks[prompt] = (meta["quality"], result["response"] or "", meta["cost_usd"])
    await orch.aclose()
    return picks


def fitted_policies(
    data: Recorded, table: pl.DataFrame, train: list[str], folder: Path
) -> tuple[KNNRoutingPolicy, CascadePolicy, float, dict[str, float]]:
    """The learned router (cost weight for the budget) and the cascade, from the training half."""
    fit, select = train[: 2 * len(train) // 3], train[2 * len(train) // 3 :]
    labelled = table.filter(pl.col("quality").is_not_null())
    outcomes = Outcomes.from_table(labelled, list(data.providers))
    strong_cost = float(np.nanmean(outcomes.subset(train).cost[:, outcomes.column(data.strongest)]))
    budget = BUDGET_SHARE * strong_cost * 1000.0
    router = KNNRoutingPolicy.fit(labelled.filter(pl.col("prompt").is_in(fit)), providers=outcomes.providers)
    chosen = outcomes.subset(select)
    quality, cost = router.estimates(select)
    pick = calibrate_cost_weight(quality, cost, chosen.quality, chosen.cost, Target(budget_per_1k=budget))
    router = router.with_cost_weight(pick.value)
    router.save(folder / "learned")
    stages = frontier_stages(outcomes.subset(fit))
    cascade, cascade_pick = fit_cascade(
        outcomes,
        stages,
        fit_prompts=fit,
        select_prompts=select,
        target=Target(budget_per_1k=budget),
        quality_model=router,
    )
    cascade.save(folder / "cascade")
    notes = {
        "budget_per_1k": budget,
        "learned_select_spend": pick.spend_per_1k,
        "cascade_select_spend": cascade_pick.spend_per_1k,
    }
    return router, cascade, budget, notes


def check_unseen(name: str, digests: list[str], evaluation: list[str]) -> None:
    from orchestra.errors import AnalysisError
    from orchestra.routing.learned import prompt_digest

    seen = set(digests) & {prompt_digest(p) for p in evaluation}
    if seen:
        raise AnalysisError(
            f"{name} was trained or tuned on {len(seen)} evaluation prompts: refusing to score it"
        )


def quality_gap_metrics(
    data: Recorded,
    outcomes: Outcomes,
    router: KNNRoutingPolicy,
    cascade: CascadePolicy,
    evaluation: list[str],
) -> dict[str, tuple[float, float, float]]:
    """APGR, CPT(50%), CPT(80%) of the learned router's and the cascade's score curves, the
    random router (10 seeds) and the oracle, on the evaluation prompts (strong/weak pairs only)."""
    held = outcomes.subset(evaluation)
    strong_name = data.strongest
    weak_name = next(p for p in data.providers if p != strong_name)
    strong, weak = held.quality[:, held.column(strong_name)], held.quality[:, held.column(weak_name)]
    keep = ~(np.isnan(strong) | np.isnan(weak))
    strong, weak = strong[keep], weak[keep]
    s_mean, w_mean = float(strong.mean()), float(weak.mean())
    estimated, _ = router.estimates(held.prompts)
    learned_score = (
        estimated[:, router.providers.index(strong_name)] - estimated[:, router.providers.index(weak_name)]
    )[keep]
    cascade_score = 1.0 - cascade.stage_probabilities(held)[keep, 0]
    curves = {
        "learned router (score: P(strong good) - P(weak good))": strong_share_curve(
            learned_score, strong, weak
        ),
        "cascade (score: 1 - P(weak answer good))": strong_share_curve(cascade_score, strong, weak),
        "oracle": optimal_curve(strong, weak),
    }
    metrics = {
        name: (apgr(c, w_mean, s_mean), cpt(c, 0.5, w_mean, s_mean), cpt(c, 0.8, w_mean, s_mean))
        for name, c in curves.items()
    }
    runs = []
    for seed in range(10):
        scores = np.random.default_rng(seed).random(strong.size)
        c = strong_share_curve(scores, strong, weak)
        runs.append((apgr(c, w_mean, s_mean), cpt(c, 0.5, w_mean, s_mean), cpt(c, 0.8, w_mean, s_mean)))
    metrics["random (mean of 10 seeds)"] = tuple(float(np.nanmean(v)) for v in zip(*runs, strict=True))
    return metrics


def calibration_report(
    table: pl.DataFrame,
    router: KNNRoutingPolicy,
    cascade: CascadePolicy,
    train: list[str],
    evaluation: list[str],
) -> None:
    """ECE and Brier on the evaluation prompts of the learned router's calibrated quality
    predictions (every provider's) and of the cascade's acceptance probability (first stage)."""
    labelled = table.filter(pl.col("quality").is_not_null())
    outcomes = Outcomes.from_table(labelled, router.providers)
    held, fitted = outcomes.subset(evaluation), outcomes.subset(train)
    calibrated, _ = router.estimates(held.prompts)
    raw, _ = router.estimates(held.prompts, calibrated=False)
    base = float(np.nanmean(fitted.quality))
    print("\ncalibration on the evaluation prompts (constant = the training labels' mean):")
    for label, values in (
        ("learned router, raw kNN estimates", raw),
        ("learned router, calibrated", calibrated),
    ):
        found = reliability(values.ravel(), held.quality.ravel(), base_rate=base)
        print(f"  {label:<44} {found}")
    first = cascade.stages[0]
    probability = cascade.stage_probabilities(held)[:, 0]
    answered = np.isfinite(probability)
    labels = held.quality[:, held.column(first)]
    found = reliability(
        probability[answered],
        labels[answered],
        base_rate=float(np.nanmean(fitted.quality[:, fitted.column(first)])),
    )
    print(f"  {'cascade: P(' + first + ' answer good)':<44} {found}")
    router_ece = reliability(calibrated.ravel(), held.quality.ravel(), base_rate=base).ece
    print(f"RESULT router_calibrated_ece {router_ece:.4f}")
    print(f"RESULT cascade_acceptance_ece {found.ece:.4f}")
    print(f"RESULT cascade_acceptance_brier_skill {found.skill:.4f}")


async def evaluate(data: Recorded, folder: Path) -> None:
    settings = load_settings(data.config)
    groups = data.groups()
    prompts = data.prompts()
    train, evaluation = data.halves()
    table = await recorded_table(settings, [(p, groups[p]) for p in prompts], labelled_only=False)
    answers: dict[str, Picks] = {p: {} for p in data.providers}
    for prompt, provider, quality, cost, output in table.select(
        "prompt", "provider", "quality", "cost_usd", "output"
    ).iter_rows():
        answers[provider][prompt] = (quality, output or "", cost)
    train_quality = {
        p: np.nanmean(
            [answers[p][x][0] if answers[p].get(x, (None,))[0] is not None else np.nan for x in train]
        )
        for p in data.providers
    }
    best = max(train_quality, key=train_quality.get)
    baseline = {p: answers[best].get(p, (None, "", None))[0] for p in evaluation}

    router, cascade, budget, notes = fitted_policies(data, table, train, folder)
    check_unseen("the learned router", router.metadata["prompt_digests"], evaluation)
    check_unseen("the cascade", cascade.metadata["prompt_digests"], evaluation)
    strategies = {
        "rules (the shipped config)": ({k: v for k, v in data.config.get("routing", {}).items()}, None),
        "random": ({"default_strategy": "random"}, None),
        "performance_based (default)": (
            {"default_strategy": "performance_based", "performance": {"load_history": False}},
            train,
        ),
        "cost_aware (default)": (
            {"default_strategy": "cost_aware", "performance": {"load_history": False}},
            train,
        ),
        f"learned (budget {BUDGET_SHARE:.0%} of {data.strongest})": (
            {
                "default_strategy": "learned",
                "learned": {"policy": str(folder / "learned"), "budget_per_1k": budget},
            },
            None,
        ),
        f"cascade (budget {BUDGET_SHARE:.0%} of {data.strongest})": (
            {
                "default_strategy": "cascade",
                "cascade": {"policy": str(folder / "cascade"), "budget_per_1k": budget},
            },
            None,
        ),
    }
    rows: list[PolicyRow] = []
    for name in sorted(data.providers):
        picks = {p: answers[name].get(p, (None, "", None)) for p in evaluation}
        rows.append(
            score_policy(
                f"single: {name}",
                picks,
                baseline,
                reference_chars=data.reference_chars,
                extra="best on training" if name == best else "",
            )
        )
    for name, (routing, warm) in strategies.items():
        raw = data.config if name.startswith("rules") else routed_config(data, routing)
        picks = await route(raw, evaluation, groups, warm)
        shares = Counter()
        for prompt, (_, answer, _) in picks.items():
            for provider in data.providers:
                if answers[provider].get(prompt, (None, None))[1] == answer:
                    shares[provider] += 1
                    break
        share_text = ", ".join(f"{p} {c / len(picks):.0%}" for p, c in shares.most_common(3))
        rows.append(
            score_policy(name, picks, baseline, reference_chars=data.reference_chars, extra=share_text)
        )
    oracle = {
        p: max(
            (
                (answers[m][p][0], answers[m][p][1], answers[m][p][2])
                for m in data.providers
                if answers[m].get(p, (None,))[0] is not None
            ),
            key=lambda item: item[0],
            default=(None, "", None),
        )
        for p in evaluation
    }
    rows.append(
        score_policy(
            "oracle (best model per prompt)",
            oracle,
            baseline,
            reference_chars=data.reference_chars,
            extra="in hindsight",
        )
    )
    quality_name = "win rate" if data.name == "alpacaeval" else "quality"
    print(f"{data.name}: {len(train)} training prompts, best single model on them: {best}")
    print(
        f"budget for the learned router and the cascade: ${budget:.4f} per 1k requests "
        f"({BUDGET_SHARE:.0%} of {data.strongest}); spend on the select part: "
        f"learned ${notes['learned_select_spend']:.4f}, cascade ${notes['cascade_select_spend']:.4f}"
    )
    print_table(rows, quality_name=quality_name, reference=best, prompts=len(evaluation))
    for row in rows:
        key = row.name.split(" (")[0].replace("single: ", "").replace(" ", "_")
        print(f"RESULT {data.name}_{key}_quality {100 * row.quality:.2f}")
        print(f"RESULT {data.name}_{key}_failures {row.failures}")
        print(f"RESULT {data.name}_{key}_unlabelled {row.unlabelled}")
        if row.cost_per_1k is not None and not row.name.startswith("oracle"):
            print(f"RESULT {data.name}_{key}_cost_per_1k {row.cost_per_1k:.4f}")
    calibration_report(table, router, cascade, train, evaluation)
    if len(data.providers) == 2:
        labelled = table.filter(pl.col("quality").is_not_null())
        metrics = quality_gap_metrics(
            data, Outcomes.from_table(labelled, list(data.providers)), router, cascade, evaluation
        )
        print(f"\nRouteLLM metrics on the evaluation prompts (strong {data.strongest}):")
        print(f"{'router':<58} {'APGR':>6} {'CPT(50%)':>9} {'CPT(80%)':>9}")
        for name, (area, half_gap, most_gap) in metrics.items():
            print(f"{name:<58} {area:6.3f} {100 * half_gap:8.1f}% {100 * most_gap:8.1f}%")
            key = name.split(" (")[0].replace(" ", "_")
            print(f"RESULT {data.name}_{key}_apgr {area:.4f}")
            print(f"RESULT {data.name}_{key}_cpt50 {100 * half_gap:.2f}")
            print(f"RESULT {data.name}_{key}_cpt80 {100 * most_gap:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="a recorded table (default: the shipped AlpacaEval data)"
    )
    args = parser.parse_args()
    data = load_recorded(args.data)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(evaluate(data, Path(folder)))


if __name__ == "__main__":
    main()
