"""The improvement loop: fit a learned router, test it against the current config on held-out
prompts, and write back an improved config when the evidence supports it.

1. Prompts of the training table are split by a hash into training and held-out prompts.
2. On the training prompts, k-fold cross-validation picks the cost weight: the best quality
   among weights whose cost is at most the current config's (plus `cost_slack`).
3. The policy is refitted on all training prompts and saved (`improvement.policy_dir`).
4. The current config and the learned config answer the held-out prompts through
   `process_request` (logged as runs when tracking is given); a paired comparison decides.

    report = await improve_async("config.yaml", table, tracking=tracking)
    print(report); report.write("config.improved.yaml")
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from scipy import stats

from orchestra.analysis.ab.means import paired_t
from orchestra.analysis.ab.result import TestResult
from orchestra.config.loader import load_settings, settings_from_dict
from orchestra.config.schema import ImprovementSettings, Settings
from orchestra.errors import ConfigError
from orchestra.improve.replay import replay_config
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import load_dataset
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.sync import run_sync
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG


@dataclass
class ImprovementReport:
    """What was learned, how it compared on held-out prompts, and the config it would write."""

    cost_weight: float
    cross_validation: pl.DataFrame  # cost_weight, quality, cost_usd (training prompts, out of fold)
    current: pl.DataFrame  # held-out prompts under the current config
    learned: pl.DataFrame  # held-out prompts under the learned config
    quality: TestResult  # learned - current, paired by prompt
    cost: TestResult
    p_non_inferior: float  # one-sided p-value: quality worse by more than the margin
    accepted: bool
    reason: str
    policy_dir: Path
    config: dict[str, Any]
    source: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def write(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the improved config (YAML, with the evidence as a header comment). Refuses when
        the learned config was not accepted, unless `force`."""
        if not self.accepted and not force:
            raise ConfigError(
                f"the learned config was not accepted ({self.reason}); pass force=True to write it"
            )
        target = Path(path)
        header = [
            f"# Written by `orchestra improve` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            + (f" from {self.source.name}." if self.source else "."),
            f"# Held-out prompts: {self.quality.n_a}. Quality (win score) {self.quality.estimate_a:.4f} -> "
            f"{self.quality.estimate_b:.4f}, difference {self.quality.effect:+.4f} "
            f"[{self.quality.ci_low:+.4f}, {self.quality.ci_high:+.4f}].",
            f"# Cost per request ${self.cost.estimate_a:.5f} -> ${self.cost.estimate_b:.5f}. "
            f"Learned router: {self.config['routing']['learned']['policy']}, "
            f"cost weight {self.cost_weight:g}.",
            f"# Decision: {'accepted' if self.accepted else 'NOT accepted (written with force)'}"
            f" - {self.reason}",
        ]
        body = yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True, width=110)
        target.write_text("\n".join(header) + "\n\n" + body, encoding="utf-8")
        return target

    def __str__(self) -> str:
        q, c = self.quality, self.cost
        return "\n".join(
            [
                f"learned router: cost weight {self.cost_weight:g} (chosen by cross-validation)",
                f"held-out prompts: {q.n_a}",
                f"quality  current {q.estimate_a:.4f}  learned {q.estimate_b:.4f}  "
                f"difference {q.effect:+.4f} [{q.ci_low:+.4f}, {q.ci_high:+.4f}] p={q.p_value:.3g}",
                f"cost     current ${c.estimate_a:.5f}  learned ${c.estimate_b:.5f}  "
                f"difference {c.effect:+.5f} [{c.ci_low:+.5f}, {c.ci_high:+.5f}]",
                f"decision: {'ACCEPT' if self.accepted else 'keep the current config'} - {self.reason}",
            ]
        )


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
) -> ImprovementReport:
    """Learn, evaluate and decide (see the module docstring); `table` is a `training_table`."""
    raw, source, current = _raw_config(config)
    datasets = datasets or {name: load_dataset(current, name) for name in current.datasets}
    options = settings or current.improvement
    providers = [p for p in sorted(table["provider"].unique().to_list()) if p in current.models]
    if not providers:
        raise ConfigError("none of the training table's providers is configured under models")
    table = table.filter(pl.col("provider").is_in(providers))
    prompts = _prompts(table)
    if len(prompts) < options.min_data_points:
        raise ConfigError(
            f"{len(prompts)} prompts with quality labels; "
            f"improvement.min_data_points is {options.min_data_points}"
        )
    held_out = {p for p, _ in prompts if _fraction(p, "holdout") < options.holdout_fraction}
    train = [(p, t) for p, t in prompts if p not in held_out]
    test = [(p, t) for p, t in prompts if p in held_out]

    train_table = table.filter(pl.col("prompt").is_in([p for p, _ in train]))
    baseline = await replay_config(current, train, datasets=datasets)
    cv = _cross_validate(train_table, options, providers)
    budget = float(baseline["cost_usd"].mean()) * (1 + options.cost_slack)
    affordable = cv.filter(pl.col("cost_usd") <= budget + 1e-12)
    pick = (affordable if not affordable.is_empty() else cv.sort("cost_usd").head(1)).sort(
        ["quality", "cost_usd"], descending=[True, False]
    )
    cost_weight = float(pick["cost_weight"][0])

    policy = KNNRoutingPolicy.fit(
        train_table,
        features=options.features,
        k=options.k,
        cost_weight=cost_weight,
        providers=providers,
    )
    policy_dir = current.resolve_path(options.policy_dir)
    policy.save(policy_dir)
    learned_raw = learned_config(raw, policy_dir, current.base_dir, cost_weight, providers)
    learned = settings_from_dict(learned_raw, base_dir=current.base_dir)

    tags = {KIND_TAG: "improve"}
    before = await replay_config(
        current,
        test,
        tracking=tracking,
        run_name="improve: current",
        tags=tags,
        progress=progress,
        datasets=datasets,
    )
    after = await replay_config(
        learned,
        test,
        tracking=tracking,
        run_name="improve: learned",
        tags=tags,
        progress=progress,
        datasets=datasets,
    )
    quality, cost = (
        paired_t(before[m].to_numpy(), after[m].to_numpy(), metric=m, arm_a="current", arm_b="learned")
        for m in ("quality", "cost_usd")
    )
    p_non_inferior = _non_inferiority_p(before, after, options.quality_margin)
    accepted, reason = _decide(quality, cost, p_non_inferior, options)
    return ImprovementReport(
        cost_weight=cost_weight,
        cross_validation=cv,
        current=before,
        learned=after,
        quality=quality,
        cost=cost,
        p_non_inferior=p_non_inferior,
        accepted=accepted,
        reason=reason,
        policy_dir=policy_dir,
        config=learned_raw,
        source=source,
        details={"training_prompts": len(train), "baseline_cost_usd": float(baseline["cost_usd"].mean())},
    )


def learned_config(
    raw: dict[str, Any], policy_dir: Path, base_dir: Path, cost_weight: float, providers: list[str]
) -> dict[str, Any]:
    """`raw` with routing switched to the learned policy over `providers` (one provider per
    request; the rules become one rule over them, and complex prompts no longer force consensus)."""
    result = copy.deepcopy(raw)
    routing = result.setdefault("routing", {})
    routing["default_strategy"] = "learned"
    routing["learned"] = {"policy": _relative(policy_dir, base_dir), "cost_weight": cost_weight}
    routing["require_consensus_for_complex"] = False
    routing["rules"] = [
        {"task_type": "any", "complexity": "any", "providers": providers, "require_consensus": False}
    ]
    return result


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


def _fraction(prompt: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _cross_validate(table: pl.DataFrame, options: ImprovementSettings, providers: list[str]) -> pl.DataFrame:
    """Out-of-fold quality and cost of the learned choice for each cost weight."""
    means = table.group_by("prompt", "provider").agg(pl.col("quality").mean(), pl.col("cost_usd").mean())
    lookup = {
        (r["prompt"], r["provider"]): (r["quality"], r["cost_usd"]) for r in means.iter_rows(named=True)
    }
    prompts = means["prompt"].unique().to_list()
    fold_of = {p: int(_fraction(p, "fold") * options.folds) for p in prompts}
    outcomes: dict[float, list[tuple[float, float]]] = {w: [] for w in options.cost_weights}
    for fold in range(options.folds):
        held = [p for p in prompts if fold_of[p] == fold]
        if not held:
            continue
        fitted = KNNRoutingPolicy.fit(
            table.filter(~pl.col("prompt").is_in(held)),
            features=options.features,
            k=options.k,
            providers=providers,
        )
        quality, cost = fitted.estimates(held)
        for weight in options.cost_weights:
            for prompt, column in zip(held, (quality - weight * cost).argmax(axis=1), strict=True):
                if (prompt, providers[column]) in lookup:
                    outcomes[weight].append(lookup[(prompt, providers[column])])
    rows = [
        (w, float(np.mean([q for q, _ in o])), float(np.mean([c for _, c in o])))
        for w, o in outcomes.items()
        if o
    ]
    return pl.DataFrame(
        rows, schema={"cost_weight": pl.Float64, "quality": pl.Float64, "cost_usd": pl.Float64}, orient="row"
    )


def _non_inferiority_p(before: pl.DataFrame, after: pl.DataFrame, margin: float) -> float:
    """One-sided paired t-test of H0: learned quality <= current - margin."""
    differences = after["quality"].to_numpy() - before["quality"].to_numpy()
    differences = differences[~np.isnan(differences)]
    if differences.size < 2:
        return 1.0
    if differences.std() == 0:
        return 0.0 if differences.mean() > -margin else 1.0
    return float(stats.ttest_1samp(differences, -margin, alternative="greater").pvalue)


def _decide(
    quality: TestResult, cost: TestResult, p_non_inferior: float, options: ImprovementSettings
) -> tuple[bool, str]:
    alpha = 1 - options.auto_apply_threshold
    if p_non_inferior >= alpha:
        return False, (
            f"quality may be worse by more than {options.quality_margin:g} "
            f"(non-inferiority p={p_non_inferior:.3g} >= {alpha:.2g})"
        )
    if quality.effect <= 0 and cost.effect >= 0:
        return False, "non-inferior, but neither better in quality nor cheaper"
    gains = []
    if quality.effect > 0:
        gains.append(f"quality {quality.effect:+.4f}")
    if cost.effect < 0:
        gains.append(f"cost {cost.effect / max(cost.estimate_a, 1e-12):+.0%}")
    return True, f"non-inferior (p={p_non_inferior:.3g} < {alpha:.2g}) with {', '.join(gains)}"


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)
