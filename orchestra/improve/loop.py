"""The improvement loop: fit candidate routers on logged calls, choose one, and decide on prompts
used for nothing else whether it replaces the current config.

1. The prompts of the training table are split by hash into fit, select and confirm
   (`orchestra.improve.splits`).
2. Power check, before fitting: the smallest difference the confirm split can detect, for the
   spread of the current config's quality on the fit split (paired differences planned at
   sqrt(2) x that sd, i.e. no correlation assumed). When it is larger than
   `improvement.min_effect`, a passing candidate is only proposed.
3. Fit (fit split): the kNN router with calibrated quality estimates, a cascade's acceptance
   models. Select (select split): the cost weight and the cascade threshold for the target
   (`orchestra.improve.candidates`), and the candidate.
4. Confirm (confirm split, used once): the current and the candidate config answer its prompts
   through `process_request` (logged as runs when tracking is given); `orchestra.improve.gate`
   decides.

    report = await improve_async("config.yaml", table, tracking=tracking)
    print(report); report.status

`offline_cycle` runs the same steps on recorded outcomes only (no engine, no logging), for the
replication benchmark.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from orchestra.config.loader import load_settings, settings_from_dict
from orchestra.config.schema import ImprovementSettings, RoutingSettings, Settings
from orchestra.errors import ConfigError
from orchestra.improve.candidates import Candidate, choose_candidate, fit_candidates, targets_for
from orchestra.improve.gate import GateDecision, PowerCheck, decide, power_check
from orchestra.improve.replay import replay_config
from orchestra.improve.report import ImprovementReport
from orchestra.improve.splits import Split, split_prompts
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import load_dataset
from orchestra.routing.outcomes import Outcomes
from orchestra.sync import run_sync
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG


@dataclass
class Plan:
    """Everything decided before the confirm split is looked at."""

    split: Split
    power: PowerCheck
    candidates: list[Candidate]
    candidate: Candidate | None
    current_select: tuple[float, float]  # current config's quality and spend per 1k, select split


def improve(config: str | Path | dict[str, Any], table: pl.DataFrame, **options: Any) -> ImprovementReport:
    """`improve_async` from synchronous code (and notebooks)."""
    return run_sync(improve_async(config, table, **options))


async def improve_async(
    config: str | Path | dict[str, Any],
    table: pl.DataFrame,
    *,
    tracking: TrackingSettings | None = None,
    settings: ImprovementSettings | None = None,
    progress: bool = False,
    datasets: dict[str, ReplayDataset] | None = None,
    now: datetime | None = None,
) -> ImprovementReport:
    """Split, check power, fit, select, confirm and decide (see the module docstring); `table`
    is a `training_table` (prompt, provider, quality, cost_usd, and output for cascades)."""
    raw, source, current = _raw_config(config)
    datasets = datasets or {name: load_dataset(current, name) for name in current.datasets}
    options = settings or current.improvement
    table, providers = _usable(table, current)
    split = split_prompts(
        _prompts(table),
        select_fraction=options.select_fraction,
        confirm_fraction=options.holdout_fraction,
        seed=options.split_seed,
    )
    _check_size(split, options)
    baseline = await replay_config(current, split.fit + split.select, datasets=datasets)
    plan = plan_improvement(
        current.routing, options, table, Outcomes.from_table(table, providers), split, baseline, providers
    )
    details: dict[str, Any] = {"providers": providers, "current_select": plan.current_select}
    empty = pl.DataFrame(schema={"prompt": pl.String, "quality": pl.Float64, "cost_usd": pl.Float64})
    if plan.candidate is None:
        details["no_candidate"] = "no candidate could be fitted (improvement.candidates)"
        return ImprovementReport(split, plan.power, [], None, empty, empty, None, None, None, source, details)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    folder = current.resolve_path(options.policy_dir) / f"{stamp}-{plan.candidate.kind}"
    plan.candidate.save(folder)
    candidate_raw = plan.candidate.config(raw, folder, current.base_dir)
    candidate = settings_from_dict(candidate_raw, base_dir=current.base_dir)
    tags = {KIND_TAG: "improve"}
    before = await replay_config(
        current,
        split.confirm,
        tracking=tracking,
        run_name="improve: current",
        tags=tags,
        progress=progress,
        datasets=datasets,
    )
    after = await replay_config(
        candidate,
        split.confirm,
        tracking=tracking,
        run_name="improve: candidate",
        tags=tags,
        progress=progress,
        datasets=datasets,
    )
    decision = confirm(plan, _per_prompt(before), _per_prompt(after), options)
    return ImprovementReport(
        split,
        plan.power,
        plan.candidates,
        plan.candidate,
        before,
        after,
        decision,
        folder,
        candidate_raw,
        source,
        details,
    )


def plan_improvement(
    routing: RoutingSettings,
    options: ImprovementSettings,
    table: pl.DataFrame,
    outcomes: Outcomes,
    split: Split,
    current: pl.DataFrame,
    providers: list[str],
) -> Plan:
    """Power check, fit and select, from the training table and the current config's answers
    (`current`: prompt, quality, cost_usd) on the fit and select prompts."""
    quality, cost = _per_prompt(current)
    fit_quality = np.array([quality[p] for p in split.texts("fit")])
    planning_sd = math.sqrt(2.0) * float(np.nanstd(fit_quality, ddof=1)) if fit_quality.size > 1 else math.inf
    power = power_check(
        sd=planning_sd,
        n=len(split.confirm),
        alpha=1.0 - options.auto_apply_threshold,
        power=options.power,
        required=options.min_effect,
        basis="sqrt(2) x the current config's sd on the fit split",
    )
    select = split.texts("select")
    current_select = (
        float(np.nanmean([quality[p] for p in select])),
        1000.0 * float(np.nanmean([cost[p] for p in select])),
    )
    targets = targets_for(routing, options, *current_select)
    candidates = fit_candidates(
        table, outcomes, split, targets, options, providers, max_stages=routing.cascade.max_stages
    )
    return Plan(split, power, candidates, choose_candidate(candidates), current_select)


def confirm(
    plan: Plan,
    current: tuple[dict[str, float], dict[str, float]],
    candidate: tuple[dict[str, float], dict[str, float]],
    options: ImprovementSettings,
) -> GateDecision:
    """The gate on the confirm split: per-prompt (quality, cost) of each config, paired by prompt."""
    prompts = plan.split.texts("confirm")
    arrays = [
        np.array([side[i][p] for p in prompts], dtype=float) for side in (current, candidate) for i in (0, 1)
    ]
    current_quality, current_cost, candidate_quality, candidate_cost = arrays
    return decide(
        current_quality,
        candidate_quality,
        current_cost,
        candidate_cost,
        margin=options.quality_margin,
        confidence=options.auto_apply_threshold,
        power=plan.power,
        min_saving=options.min_saving,
    )


@dataclass
class OfflineCycle:
    plan: Plan
    decision: GateDecision | None


def offline_cycle(
    routing: RoutingSettings,
    options: ImprovementSettings,
    table: pl.DataFrame,
    current: pl.DataFrame,
    providers: list[str],
) -> OfflineCycle:
    """The whole loop on recorded outcomes: `table` has every provider's answer to each prompt,
    `current` the current config's (prompt, quality, cost_usd); the candidate is replayed from
    the table (as `process_request` would answer, which a test checks)."""
    split = split_prompts(
        _prompts(table),
        select_fraction=options.select_fraction,
        confirm_fraction=options.holdout_fraction,
        seed=options.split_seed,
    )
    _check_size(split, options)
    outcomes = Outcomes.from_table(table, providers)
    plan = plan_improvement(routing, options, table, outcomes, split, current, providers)
    if plan.candidate is None:
        return OfflineCycle(plan, None)
    confirm_prompts = split.texts("confirm")
    quality, cost = plan.candidate.route(outcomes.subset(confirm_prompts))
    candidate = (
        dict(zip(confirm_prompts, quality, strict=True)),
        dict(zip(confirm_prompts, cost, strict=True)),
    )
    return OfflineCycle(plan, confirm(plan, _per_prompt(current), candidate, options))


def _per_prompt(frame: pl.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    """prompt -> quality and prompt -> cost; a failed request scores 0 (it gave no answer)."""
    failed = pl.col("error_type").is_not_null() if "error_type" in frame.columns else pl.lit(False)
    rows = frame.with_columns(
        pl.when(failed).then(0.0).otherwise(pl.col("quality")).alias("quality"),
        pl.col("cost_usd").fill_null(0.0),
    )
    quality = {
        p: (math.nan if q is None else q) for p, q in zip(rows["prompt"], rows["quality"], strict=True)
    }
    return quality, dict(zip(rows["prompt"], rows["cost_usd"], strict=True))


def _usable(table: pl.DataFrame, current: Settings) -> tuple[pl.DataFrame, list[str]]:
    providers = [p for p in sorted(table["provider"].unique().to_list()) if p in current.models]
    if not providers:
        raise ConfigError("none of the training table's providers is configured under models")
    return table.filter(pl.col("provider").is_in(providers)), providers


def _check_size(split: Split, options: ImprovementSettings) -> None:
    total = len(split.fit) + len(split.select) + len(split.confirm)
    if total < options.min_data_points:
        raise ConfigError(
            f"{total} prompts with quality labels; improvement.min_data_points is {options.min_data_points}"
        )
    if min(len(split.fit), len(split.select), len(split.confirm)) < 10:
        raise ConfigError(f"too few prompts in a split ({split}); need at least 10 in each")


def _raw_config(config: str | Path | dict[str, Any]) -> tuple[dict[str, Any], Path | None, Settings]:
    """The config as written (environment placeholders kept, so no secret is ever written back),
    its file, and its validated settings."""
    if isinstance(config, dict):
        return copy.deepcopy(config), None, load_settings(config)
    path = Path(config).resolve()
    settings = load_settings(path)  # validated first: clear errors for a broken config
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path, settings


def _prompts(table: pl.DataFrame) -> list[tuple[str, str]]:
    first = table.group_by("prompt", maintain_order=True).agg(pl.col("task_type").first())
    return list(
        zip(first["prompt"].to_list(), first["task_type"].fill_null("general").to_list(), strict=True)
    )
