"""Candidate configs for the improvement loop: a learned router and a cascade, fitted on the fit
split, tuned on the select split for a target, and the one to confirm chosen there too.

    candidates = fit_candidates(outcomes, split, targets, options, providers)
    best = choose_candidate(candidates)
    best.route(outcomes.subset(prompts))           # per-prompt quality and cost, replayed
    best.config(raw_config, policy_folder, base_dir)

Targets (`targets_for`): a configured budget or quality target (`routing.learned.*`,
`routing.cascade.*`); otherwise `improvement.objective`: `match_quality` asks for the cheapest
setting at least as good as the current config on the select split, `best_quality` for the
best one at no more than its spend.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from orchestra.config.schema import ImprovementSettings, RoutingSettings
from orchestra.improve.splits import Split
from orchestra.logs import get_logger
from orchestra.routing.budget import Target, TradeOffPick, calibrate_cost_weight
from orchestra.routing.cascade import ALWAYS_ESCALATE, CascadePolicy, fit_cascade, frontier_stages
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.outcomes import Outcomes

logger = get_logger("orchestra.improve")

Kind = Literal["learned", "cascade"]


@dataclass
class Candidate:
    """A fitted router or cascade with the setting chosen for its target on the select split."""

    kind: Kind
    pick: TradeOffPick
    providers: list[str]
    policy: KNNRoutingPolicy | None = None
    cascade: CascadePolicy | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def route(self, outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt quality and cost of this candidate on full-information outcomes."""
        if self.cascade is not None:
            run = self.cascade.simulate(outcomes)
            return run.quality, run.cost
        assert self.policy is not None
        quality, cost = self.policy.estimates(outcomes.prompts)
        best = np.argmax(quality - self.policy.cost_weight * cost, axis=1)
        columns = np.array([outcomes.column(self.policy.providers[j]) for j in best], dtype=int)
        return outcomes.routed(columns)

    def save(self, folder: Path) -> Path:
        if self.cascade is not None:
            return self.cascade.save(folder)
        assert self.policy is not None
        return self.policy.save(folder)

    def config(self, raw: dict[str, Any], folder: Path, base_dir: Path) -> dict[str, Any]:
        """`raw` with routing switched to this candidate (saved in `folder`) over its providers."""
        target = self.pick.target
        held = {}  # a configured target is kept (the router then watches the spend against a budget)
        if target.configured and target.budget_per_1k is not None:
            held["budget_per_1k"] = target.budget_per_1k
        if target.configured and target.quality_target is not None:
            held["quality_target"] = target.quality_target
        if self.cascade is not None:
            cascade = {"policy": _relative(folder, base_dir), **held}
            return routed_config(raw, self.providers, "cascade", {"cascade": cascade})
        assert self.policy is not None
        learned = {"policy": _relative(folder, base_dir), "cost_weight": self.policy.cost_weight, **held}
        return routed_config(raw, self.providers, "learned", {"learned": learned})

    def describe(self) -> str:
        if self.cascade is not None:
            return f"cascade {' -> '.join(self.cascade.stages)} at threshold {self.cascade.threshold:.3f}"
        assert self.policy is not None
        return f"learned router (kNN) at cost weight {self.policy.cost_weight:g}"


def routed_config(
    raw: dict[str, Any], providers: list[str], strategy: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """`raw` with one rule over `providers`, one provider per request, and `strategy`."""
    result = copy.deepcopy(raw)
    routing = result.setdefault("routing", {})
    routing["default_strategy"] = strategy
    for key in ("learned", "cascade"):
        routing.pop(key, None)
    routing.update(extra)
    routing["require_consensus_for_complex"] = False
    routing["rules"] = [
        {"task_type": "any", "complexity": "any", "providers": list(providers), "require_consensus": False}
    ]
    return result


def targets_for(
    routing: RoutingSettings,
    options: ImprovementSettings,
    current_quality: float,
    current_spend_per_1k: float,
) -> dict[Kind, Target]:
    """The target each candidate is tuned for (see the module docstring)."""
    learned = Target(routing.learned.budget_per_1k, routing.learned.quality_target)
    cascade = Target(routing.cascade.budget_per_1k, routing.cascade.quality_target)
    if cascade.kind == "none":
        cascade = learned
    if options.objective == "best_quality":
        default = Target(budget_per_1k=current_spend_per_1k * (1 + options.cost_slack), configured=False)
    else:
        default = Target(quality_target=current_quality, configured=False)
    return {
        "learned": learned if learned.kind != "none" else default,
        "cascade": cascade if cascade.kind != "none" else default,
    }


def fit_candidates(
    table: pl.DataFrame,
    outcomes: Outcomes,
    split: Split,
    targets: dict[Kind, Target],
    options: ImprovementSettings,
    providers: list[str],
    max_stages: int = 3,
) -> list[Candidate]:
    """Each enabled candidate, fitted on the fit split and tuned on the select split."""
    fit_prompts, select_prompts = split.texts("fit"), split.texts("select")
    policy = KNNRoutingPolicy.fit(
        table.filter(pl.col("prompt").is_in(fit_prompts)),
        features=options.features,
        k=options.k,
        providers=providers,
        calibration=options.calibration,
    )
    candidates = []
    if "learned" in options.candidates:
        select = outcomes.subset(select_prompts)
        quality, cost = policy.estimates(select_prompts)
        columns = [select.column(p) for p in policy.providers]
        pick = calibrate_cost_weight(
            quality, cost, select.quality[:, columns], select.cost[:, columns], targets["learned"]
        )
        candidates.append(Candidate("learned", pick, providers, policy=policy.with_cost_weight(pick.value)))
    if "cascade" in options.candidates:
        fit = outcomes.subset(fit_prompts)
        stages = frontier_stages(fit, max_stages)
        columns = [fit.column(s) for s in stages]
        has_text = all(row[c] is not None for row in fit.outputs for c in columns)
        if len(stages) < 2:
            logger.info("no cascade: one provider is both the cheapest and the best on the fit split")
        elif not has_text:
            logger.info("no cascade: the training table has no answer texts (column output)")
        else:
            cascade, pick = fit_cascade(
                outcomes,
                stages,
                fit_prompts=fit_prompts,
                select_prompts=select_prompts,
                target=targets["cascade"],
                quality_model=policy,
                method=options.calibration,
            )
            if cascade.threshold >= ALWAYS_ESCALATE:  # it pays the cheap calls for nothing
                logger.info("no cascade: at its best setting for the target it always escalates")
            else:
                candidates.append(Candidate("cascade", pick, stages, cascade=cascade))
    return candidates


def choose_candidate(candidates: list[Candidate]) -> Candidate | None:
    """Among candidates that met their target on the select split: for a budget the best
    quality, for a quality target the lowest spend (then the other as a tie-break). When none
    met it, the closest one."""
    if not candidates:
        return None
    met = [c for c in candidates if c.pick.met] or candidates

    def key(c: Candidate) -> tuple[float, float]:
        if c.pick.target.kind == "quality":
            return (
                (c.pick.spend_per_1k, -c.pick.quality)
                if c.pick.met
                else (-c.pick.quality, c.pick.spend_per_1k)
            )
        return (
            (-c.pick.quality, c.pick.spend_per_1k) if c.pick.met else (c.pick.spend_per_1k, -c.pick.quality)
        )

    return min(met, key=key)


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)
