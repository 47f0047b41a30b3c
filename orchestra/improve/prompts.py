"""Meta-prompting: a better system prompt for one task type, found by a model from the logged
failures and kept only when the gate of `orchestra improve` says so.

    report = await improve_prompts_async("config.yaml", "math", tracking=tracking)
    print(report); report.status                          # accepted | proposed | rejected
    write_back_prompt(report, "config.yaml", tracking)   # a new registry version, the alias moved

1. The logged requests of the task type (or `requests`) are scored: the logged quality label,
   or `improvement.prompts.scorer` applied to the logged answer. Their prompts are split by hash
   into fit, select and confirm (`orchestra.improve.splits`).
2. Search (`orchestra.improve.prompts_search`): GEPA starts from the rule's current system
   prompt, reflects with the `improvement.prompts.proposer` provider on minibatches of the fit
   split's low-quality requests (quality below `low_quality`), and selects on the select split;
   every evaluation is a request through `process_request` with the candidate system prompt.
3. Confirm (used once): the current and the best prompt answer the confirm prompts through
   `process_request` (logged as runs when tracking is on); `orchestra.improve.gate.decide`
   decides, non-inferior on quality and better in quality (or cheaper), with the power check.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import yaml

from orchestra.config.files import read_yaml
from orchestra.config.loader import load_settings
from orchestra.config.schema import ImprovementSettings, Settings
from orchestra.errors import ConfigError
from orchestra.improve.gate import GateDecision, GatedOutcome, PowerCheck, decide, power_check
from orchestra.improve.prompts_search import Answer, SearchResult, search_prompts
from orchestra.improve.splits import Split, split_prompts
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.recorded import ReplayDataset
from orchestra.scoring.loading import Scorer, load_scorer
from orchestra.sync import run_sync
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG
from orchestra.types import ModelRequest

IMPROVER = "orchestra-improve-prompts"
"""The user_id of the requests the loop itself sends (left out of the data it learns from)."""


@dataclass
class PromptImprovementReport(GatedOutcome):
    """One run of `improve_prompts`: the data, the search, the confirm comparison, the decision."""

    no_candidate: ClassVar[str] = "no candidate prompt"

    task_type: str
    current: str | None
    current_source: str | None  # prompts:/name/3 when the current prompt came from the registry
    split: Split | None
    low_quality: int  # logged low-quality requests the search learned from
    search: SearchResult | None
    power: PowerCheck | None
    decision: GateDecision | None
    before: list[Answer] = field(default_factory=list)
    after: list[Answer] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the config as written, for a reference to be written into
    source: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def candidate(self) -> str | None:
        return self.search.best if self.search is not None and self.search.improved else None

    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "task_type": self.task_type,
            "current": self.current,
            "current_source": self.current_source,
            "candidate": self.candidate,
            "low_quality_requests": self.low_quality,
            "split": None if self.split is None else str(self.split),
        }
        if self.search is not None:
            evidence["search"] = {
                "candidates": self.search.candidates,
                "select_scores": self.search.scores,
                "evaluations": self.search.evaluations,
            }
        if self.power is not None:
            evidence["power"] = {"detectable": self.power.detectable, "required": self.power.required}
        if self.decision is not None:
            q = self.decision.quality
            evidence["confirm"] = {
                "prompts": q.n_a,
                "quality_current": q.estimate_a,
                "quality_candidate": q.estimate_b,
                "quality_difference": q.effect,
                "quality_ci": [q.ci_low, q.ci_high],
                "p_non_inferior": self.decision.p_non_inferior,
                "p_replicates": self.decision.p_replicates,
                "cost_current": self.decision.cost.estimate_a,
                "cost_candidate": self.decision.cost.estimate_b,
            }
        return evidence

    def render(self) -> str:
        """The config as written, for a write-back that also changes the config file."""
        if self.config is None:
            raise ConfigError("this report holds no config to write")
        return yaml.safe_dump(
            self.config, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
        )

    def __str__(self) -> str:
        lines = [f"task type {self.task_type}: current system prompt {_short(self.current)}"]
        if self.current_source:
            lines[0] += f" ({self.current_source})"
        lines.append(f"learned from {self.low_quality} logged low-quality requests; splits: {self.split}")
        if self.search is not None:
            for index, (text, score) in enumerate(
                zip(self.search.candidates, self.search.scores, strict=True)
            ):
                mark = " <- best" if index == self.search.best_index else ""
                lines.append(f"  candidate {index}: select quality {score:.3f}  {_short(text)}{mark}")
        if self.power is not None:
            lines.append(f"power: {self.power}")
        if self.decision is not None:
            q = self.decision.quality
            lines.append(
                f"confirm ({q.n_a} prompts): quality {q.estimate_a:.4f} -> {q.estimate_b:.4f}, difference "
                f"{q.effect:+.4f} [{q.ci_low:+.4f}, {q.ci_high:+.4f}], non-inferiority p="
                f"{self.decision.p_non_inferior:.3g}"
            )
        lines.append(f"decision: {self.status} - {self.reason}")
        return "\n".join(lines)


def improve_prompts(config: str | Path, task_type: str, **options: Any) -> PromptImprovementReport:
    """`improve_prompts_async` from synchronous code (and notebooks)."""
    return run_sync(improve_prompts_async(config, task_type, **options))


async def improve_prompts_async(
    config: str | Path,
    task_type: str,
    *,
    tracking: TrackingSettings,
    requests: pl.DataFrame | None = None,
    connectors: dict[str, BaseModelConnector] | None = None,
    scorer: Scorer | str | None = None,
    datasets: dict[str, ReplayDataset] | None = None,
    concurrency: int = 16,
) -> PromptImprovementReport:
    """Search, confirm and decide (see the module docstring). `requests` are logged requests
    (default: every request of the tracking experiment); `connectors` serve providers that are
    registered in code (type function)."""
    from orchestra import Orchestra

    path, settings, raw = _load(config)
    options = settings.improvement
    proposer = _proposer(settings)
    score = load_scorer(scorer if scorer is not None else options.prompts.scorer)
    orch = Orchestra(settings, tracking=tracking, datasets=datasets)
    for name, connector in (connectors or {}).items():
        orch.model_registry.register_connector(name, connector)
    try:
        current, source = _current_prompt(orch, task_type)
        report = PromptImprovementReport(task_type, current, source, None, 0, None, None, None, source=path)
        report.config = with_reference(raw, task_type, _reference(settings, task_type, source))
        logged = _scored(_logged(requests, tracking, task_type), score)
        split = split_prompts(
            [(p, task_type) for p in logged["prompt"].unique(maintain_order=True).to_list()],
            select_fraction=options.select_fraction,
            confirm_fraction=options.holdout_fraction,
            seed=options.split_seed,
        )
        report.split = split
        fit = set(split.texts("fit"))
        low = logged.filter(pl.col("prompt").is_in(fit) & (pl.col("score") < options.prompts.low_quality))
        train = low["prompt"].unique(maintain_order=True).to_list()
        report.low_quality = low.height
        if not train or len(split.select) < 2 or len(split.confirm) < 10:
            report.details["no_candidate"] = (
                f"too little data: {len(train)} low-quality prompts to learn from in the fit split, "
                f"{len(split.select)} select and {len(split.confirm)} confirm prompts (need 1, 2 and 10)"
            )
            return report
        gate = asyncio.Semaphore(concurrency)

        async def evaluate(system_prompt: str, prompts: list[str]) -> list[Answer]:
            async def one(prompt: str) -> Answer:
                async with gate:
                    return await _answer(orch, prompt, task_type, system_prompt, score)

            return list(await asyncio.gather(*(one(p) for p in prompts)))

        loop = asyncio.get_running_loop()

        def evaluate_sync(system_prompt: str, prompts: list[str]) -> list[Answer]:
            return asyncio.run_coroutine_threadsafe(evaluate(system_prompt, prompts), loop).result()

        def reflect_sync(text: str) -> str:
            request = ModelRequest(prompt=text, temperature=0.7)
            connector = orch.model_registry.get(proposer)
            return asyncio.run_coroutine_threadsafe(connector.generate(request), loop).result().content

        async with orch.run("improve prompts: search", tags={KIND_TAG: "improve-prompts"}):
            report.search = await asyncio.to_thread(
                search_prompts,
                current or "",
                train,
                split.texts("select"),
                evaluate=evaluate_sync,
                reflect=reflect_sync,
                budget=options.prompts.max_evaluations,
                minibatch=options.prompts.minibatch,
                seed=options.split_seed,
            )
        if not report.search.improved:
            report.details["no_candidate"] = (
                "no proposed prompt scored better than the current one on the select split"
            )
            return report
        report.power = _power(report.search, options, len(split.confirm))
        confirm = split.texts("confirm")
        async with orch.run("improve prompts: current", tags={KIND_TAG: "improve-prompts"}):
            report.before = await evaluate(current or "", confirm)
        async with orch.run("improve prompts: candidate", tags={KIND_TAG: "improve-prompts"}):
            report.after = await evaluate(report.search.best, confirm)
        report.decision = decide(
            np.array([a.quality for a in report.before]),
            np.array([a.quality for a in report.after]),
            np.array([a.cost_usd for a in report.before]),
            np.array([a.cost_usd for a in report.after]),
            margin=options.quality_margin,
            confidence=options.auto_apply_threshold,
            power=report.power,
            min_saving=options.min_saving,
        )
        return report
    finally:
        await orch.aclose()


def with_reference(raw: dict[str, Any], task_type: str, reference: str) -> dict[str, Any]:
    """`raw` with every rule of `task_type` taking its system prompt from `reference`; without
    such a rule, a copy of the first rule that routes the task type is put before it."""
    import copy

    result = copy.deepcopy(raw)
    rules = result.setdefault("routing", {}).setdefault("rules", [])
    own = [rule for rule in rules if rule.get("task_type") == task_type]
    for rule in own:
        rule["system_prompt"] = reference
    if not own:
        index = next(
            (i for i, rule in enumerate(rules) if rule.get("task_type", "any") in ("any", "*")), None
        )
        if index is None:
            raise ConfigError(f"no routing rule routes task type {task_type!r}: add one for it first")
        rules.insert(
            index, {**copy.deepcopy(rules[index]), "task_type": task_type, "system_prompt": reference}
        )
    return result


def registry_name(settings: Settings, task_type: str) -> str:
    """The name the task type's system prompt is registered under."""
    configured = settings.improvement.prompts.registry_name
    if configured:
        return configured
    text = f"{settings.framework.name}-{task_type}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def _reference(settings: Settings, task_type: str, source: str | None) -> str:
    from orchestra.tracking.prompt_registry import PromptReference

    name = PromptReference.parse(source).name if source else registry_name(settings, task_type)
    return f"prompts:/{name}@{settings.improvement.prompts.alias}"


def _load(config: str | Path) -> tuple[Path, Settings, dict[str, Any]]:
    """The config file, its settings, and its text as written (placeholders kept)."""
    path = Path(config).resolve()
    settings = load_settings(path)
    return path, settings, dict(read_yaml(path) or {})


def _proposer(settings: Settings) -> str:
    proposer = settings.improvement.prompts.proposer
    if proposer is None:
        raise ConfigError(
            "improvement.prompts.proposer must name the provider (under models) that proposes prompts"
        )
    if proposer not in settings.models:
        raise ConfigError(
            f"improvement.prompts.proposer is {proposer!r}, which is not under models "
            f"(configured: {sorted(settings.models)})"
        )
    return proposer


def _current_prompt(orch: Any, task_type: str) -> tuple[str | None, str | None]:
    """The system prompt the task type's requests get now (resolved), and its registry version."""
    rules = orch.task_router.rules
    own = [rule for rule in rules if rule.task_type == task_type]
    rule = own[0] if own else next((r for r in rules if r.task_type in ("any", "*")), None)
    if rule is None:
        raise ConfigError(f"no routing rule routes task type {task_type!r}: add one for it first")
    return rule.system_prompt, rule._system_prompt_source if own else None


def _logged(requests: pl.DataFrame | None, tracking: TrackingSettings, task_type: str) -> pl.DataFrame:
    if requests is None:
        from orchestra.tracking.reader import load_requests

        requests = load_requests(tracking=tracking)
    needed = {"prompt", "response", "quality", "task_type", "status", "user_id"}
    if needed - set(requests.columns):
        raise ConfigError(f"the logged requests lack columns {sorted(needed - set(requests.columns))}")
    return requests.filter(
        (pl.col("task_type") == task_type) & (pl.col("status") == "ok") & (pl.col("user_id") != IMPROVER)
    )


def _scored(requests: pl.DataFrame, scorer: Scorer | None) -> pl.DataFrame:
    """The requests with a `score`: the scorer's, else the logged quality label."""
    if scorer is None:
        return requests.with_columns(pl.col("quality").alias("score")).drop_nulls("score")
    scores = [scorer(p, r or "") for p, r in zip(requests["prompt"], requests["response"], strict=True)]
    return requests.with_columns(pl.Series("score", scores, dtype=pl.Float64)).drop_nulls("score")


async def _answer(
    orch: Any, prompt: str, task_type: str, system_prompt: str, scorer: Scorer | None
) -> Answer:
    from orchestra.errors import OrchestraError

    try:
        result = await orch.process_request(
            prompt, task_type=task_type, user_id=IMPROVER, system_prompt=system_prompt or None
        )
    except OrchestraError as err:
        return Answer(prompt, "", 0.0, 0.0, type(err).__name__)
    response = result["response"] or ""
    metadata = result["metadata"]
    quality = scorer(prompt, response) if scorer is not None else metadata.get("quality")
    cost = float(metadata.get("cost_usd") or 0.0)
    return Answer(prompt, response, 0.0 if quality is None else float(quality), cost)


def _power(search: SearchResult, options: ImprovementSettings, n: int) -> PowerCheck:
    """What the confirm split can detect, planned from the current prompt's spread on the select split."""
    seed_scores = np.array(search.seed_scores, dtype=float)
    sd = math.sqrt(2.0) * float(np.std(seed_scores, ddof=1)) if seed_scores.size > 1 else math.inf
    return power_check(
        sd=sd,
        n=n,
        alpha=1.0 - options.auto_apply_threshold,
        power=options.power,
        required=options.min_effect,
        basis="sqrt(2) x the current prompt's sd on the select split",
    )


def _short(text: str | None, limit: int = 70) -> str:
    if not text:
        return "(none)"
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")
