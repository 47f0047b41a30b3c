"""`orchestra demo`: route every recorded AlpacaEval prompt under several configurations.

Each configuration is one MLflow run (under one parent run); every request is logged. The
table compares win rate against the reference (GPT-4 Turbo, from the recorded judge labels),
cost, simulated latency and which providers answered; then each configuration against the
control (always GPT-4), paired by prompt, with a one-line verdict from `orchestra.analysis.ab`.

Without `--config` the demo uses ./config.yaml, else the configuration shipped in the package
(`orchestra/data/demo.yaml`); `--data PATH` points it at the recorded table.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from orchestra.analysis import ab
from orchestra.analysis.ab import TestResult
from orchestra.analysis.winrate import WinRate
from orchestra.config.files import read_yaml
from orchestra.config.loader import load_settings, settings_from_dict
from orchestra.config.schema import RoutingSettings, Settings
from orchestra.engine.orchestrator import Orchestra
from orchestra.errors import ConfigError, OrchestraError
from orchestra.providers.pricing import PriceTable
from orchestra.sweeps.arms import Outcome, answer_all, summarize_outcomes
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.tags import KIND_TAG
from orchestra.tracking.tracker import Tracker

STRONG = ["gpt-4", "claude-2.1", "gemini-pro"]
CONTROL = "always-gpt-4"
DEEPER = "notebooks/03_ab_testing.ipynb"
"""The notebook that goes deeper: paired tests on several metrics, power, cost per success."""


@dataclass(frozen=True)
class DemoArm:
    """One configuration of the demo: routing rules over the configured providers."""

    name: str
    description: str
    rules: list[dict[str, Any]]


@dataclass
class ArmResult:
    arm: DemoArm
    win_rate: WinRate
    cost_per_request: float
    latency_ms: float
    calls_per_request: float
    answered_share: dict[str, float]
    requests: int
    errors: int
    run_id: str | None
    qualities: tuple[float, ...] = ()
    """Each prompt's win score, in prompt order (NaN when the request failed or has no label)."""

    def _repr_html_(self) -> str:
        from orchestra.display import table_html

        row = {
            "configuration": self.arm.name,
            "win rate %": self.win_rate.percent,
            "95% CI": f"[{self.win_rate.low:.2f}, {self.win_rate.high:.2f}]",
            "cost/request $": self.cost_per_request,
            "sim. latency s": self.latency_ms / 1000,
            "calls/request": self.calls_per_request,
            "answered by": {p: f"{s:.0%}" for p, s in self.answered_share.items()},
            "errors": self.errors,
            "MLflow run": self.run_id,
        }
        return table_html([row], caption=self.arm.description)


def demo_arms(settings: Settings, prices: PriceTable) -> list[DemoArm]:
    """Always GPT-4; the cheapest model; three strong providers + consensus; complexity-routed."""
    cheapest = min(settings.models, key=lambda name: _input_output_price(settings, prices, name))
    return [
        DemoArm(CONTROL, "every prompt to GPT-4", [{"providers": ["gpt-4"]}]),
        DemoArm(
            f"cheapest ({cheapest})",
            "every prompt to the cheapest model in the price table",
            [{"providers": [cheapest]}],
        ),
        DemoArm(
            "consensus-3-strong",
            "GPT-4, Claude 2.1 and Gemini Pro in parallel; the lexical medoid answer is returned",
            [{"providers": STRONG, "require_consensus": True}],
        ),
        DemoArm(
            "complexity-routed",
            "simple -> Mixtral, medium -> Gemini Pro, complex -> consensus of the three strong ones",
            [
                {"complexity": "simple", "providers": ["mixtral-8x7b"]},
                {"complexity": "medium", "providers": ["gemini-pro"]},
                {"complexity": "complex", "providers": STRONG, "require_consensus": True},
            ],
        ),
    ]


def _input_output_price(settings: Settings, prices: PriceTable, name: str) -> float:
    price = prices.lookup(settings.models[name].default_model or name)
    return float("inf") if price is None else price.input_per_1m + price.output_per_1m


def arm_settings(base: Settings, arm: DemoArm) -> Settings:
    routing = RoutingSettings.model_validate({**base.routing.model_dump(), "rules": arm.rules})
    return base.model_copy(update={"routing": routing})


def demo_settings(config: str | Path | None = None, data: str | Path | None = None) -> Settings:
    """The demo's settings: `config`, else ./config.yaml, else the configuration shipped in the
    package; with `data`, its (first) dataset reads that recorded table instead."""
    if config is None and not Path("config.yaml").is_file():
        with resources.as_file(resources.files("orchestra.data").joinpath("demo.yaml")) as path:
            settings = settings_from_dict(read_yaml(path), base_dir=Path.cwd(), origin="demo.yaml")
    else:
        settings = load_settings(config or "config.yaml")
    if not settings.datasets:
        raise ConfigError("the demo replays a recorded dataset, and this config has none under datasets")
    name, dataset = next(iter(settings.datasets.items()))
    if data is not None:
        dataset = dataset.model_copy(update={"path": str(Path(data).expanduser().resolve())})
        settings = settings.model_copy(update={"datasets": {**settings.datasets, name: dataset}})
    if not settings.resolve_path(dataset.path).is_file():
        raise ConfigError(
            f"the recorded table {str(settings.resolve_path(dataset.path))!r} does not exist: pass "
            "--data PATH (the AlpacaEval table is data/alpacaeval/responses.parquet in the repository; "
            "it is CC BY-NC 4.0 and not shipped in the package)"
        )
    return settings


async def run_demo(
    config: str | Path | None = "config.yaml",
    *,
    data: str | Path | None = None,
    tracking: TrackingSettings | None = None,
    limit: int | None = None,
    concurrency: int = 64,
    progress: bool = True,
) -> tuple[list[ArmResult], TrackingSettings]:
    """Run every demo arm over the recorded prompts; returns the results and where they were logged."""
    base = demo_settings(config, data)
    tracking = tracking or load_tracking_settings(search_from=base.base_dir)
    tracker = Tracker(tracking)
    first = Orchestra(base, tracker=tracker)
    dataset = next(iter(first.datasets.values()))
    groups = dataset.groups()
    prompts = dataset.prompts()[:limit] if limit else dataset.prompts()
    results = []
    try:
        async with first.run(f"demo-{time.strftime('%Y%m%d-%H%M%S')}", tags={KIND_TAG: "demo"}):
            for arm in demo_arms(base, first.prices):
                orch = Orchestra(arm_settings(base, arm), tracker=tracker, datasets=first.datasets)
                results.append(await _run_arm(orch, arm, prompts, groups, concurrency, progress))
        await first.flush()
    finally:
        tracker.close()
    return results, tracking


async def _run_arm(
    orch: Orchestra, arm: DemoArm, prompts: list[str], groups: dict, concurrency: int, progress: bool
) -> ArmResult:
    params = {"demo.arm": arm.name, "demo.description": arm.description, "demo.prompts": len(prompts)}
    pairs = [(prompt, groups.get(prompt) or "general") for prompt in prompts]
    async with orch.run(arm.name, params=params, tags={KIND_TAG: "demo-arm"}) as scope:
        with tqdm(total=len(pairs), desc=f"{arm.name:<28}", disable=not progress, file=sys.stderr) as bar:
            outcomes = await answer_all(
                orch, pairs, concurrency, lambda _: _advance(bar), user_id="demo", session_id=arm.name
            )
        result = summarize(arm, outcomes, scope.run_id)
        scope.log_metrics(
            {
                "win_rate": result.win_rate.percent,
                "win_rate_ci_low": result.win_rate.low,
                "win_rate_ci_high": result.win_rate.high,
                "cost_per_request_usd": result.cost_per_request,
                "simulated_latency_ms_mean": result.latency_ms,
                "calls_per_request": result.calls_per_request,
            }
        )
    return result


def _advance(bar: tqdm) -> None:
    bar.update()


def summarize(arm: DemoArm, outcomes: list[Outcome], run_id: str | None) -> ArmResult:
    """Aggregate one arm's results (failed requests count as errors, not as losses)."""
    summary = summarize_outcomes(outcomes)
    if not summary.answered:
        raise OrchestraError(f"demo arm {arm.name!r}: every request failed")
    if summary.win_rate is None:
        raise OrchestraError(f"demo arm {arm.name!r}: no answer has a quality label")
    assert summary.cost_per_request is not None and summary.latency_ms is not None
    assert summary.calls_per_request is not None
    return ArmResult(
        arm=arm,
        win_rate=summary.win_rate,
        cost_per_request=summary.cost_per_request,
        latency_ms=summary.latency_ms,
        calls_per_request=summary.calls_per_request,
        answered_share=summary.answered_share,
        requests=summary.requests,
        errors=summary.errors,
        run_id=run_id,
        qualities=tuple(_quality(outcome) for outcome in outcomes),
    )


def _quality(outcome: Outcome) -> float:
    quality = None if outcome is None else outcome["metadata"]["quality"]
    return math.nan if quality is None else float(quality)


def compare_to_control(results: list[ArmResult]) -> dict[str, TestResult]:
    """Each configuration's win rate minus the control's, in points, paired by prompt (paired
    t-test), Holm-adjusted across the comparisons; keyed by configuration name."""
    control = next((r for r in results if r.arm.name == CONTROL), None)
    if control is None:
        return {}
    tests = [
        ab.paired_t(
            [q * 100 for q in control.qualities],
            [q * 100 for q in r.qualities],
            metric="win rate",
            arm_a=CONTROL,
            arm_b=r.arm.name,
        )
        for r in results
        if r is not control
    ]
    return {t.arm_b: t for t in ab.adjust(tests, method="holm")}


def render(results: list[ArmResult]) -> str:
    """The comparison table, one row per configuration, then one verdict line per comparison."""
    comparisons = compare_to_control(results)
    control = next((r for r in results if r.arm.name == CONTROL), None)
    header = (
        f"{'configuration':<28} {'win rate vs GPT-4 Turbo [95% CI]':<33} "
        f"{'vs ' + CONTROL + ' [95% CI]':<27} {'cost/request':>12} {'cost x':>7} "
        f"{'sim. latency':>12} {'calls/req':>9}  answered by"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        shares = ", ".join(f"{p} {_percent(s)}" for p, s in r.answered_share.items())
        test = comparisons.get(r.arm.name)
        difference = "(control)" if r is control else _difference(test)
        ratio = (
            r.cost_per_request / control.cost_per_request if control and control.cost_per_request else None
        )
        lines.append(
            f"{r.arm.name:<28} {r.win_rate!s:<33} {difference:<27} "
            f"{'$' + format(r.cost_per_request, '.5f'):>12} {_ratio(ratio):>7} "
            f"{r.latency_ms / 1000:>10.2f} s {r.calls_per_request:>9.2f}  {shares}"
        )
    n = results[0].win_rate.n if results else 0
    lines.append("")
    lines.append(
        f"{n} AlpacaEval DEV prompts per configuration; win rate = mean judge preference vs "
        "GPT-4 Turbo (win 1, draw 0.5), t-interval. Cost at the list prices of the recording date "
        "(genai-prices catalogue), tokens estimated at 4 chars/token; latency simulated per model (seeded)."
    )
    if comparisons:
        lines.append("")
        lines.append(
            f"Against {CONTROL}, paired by prompt (difference in win-rate points, paired t-test, "
            f"Holm-adjusted over {len(comparisons)} comparisons; cost x = cost per request / the control's):"
        )
        lines += [f"  {test.verdict}" for test in comparisons.values()]
    return "\n".join(lines)


def _difference(test: TestResult | None) -> str:
    if test is None or not test.computable:
        return "n/a"
    return f"{test.effect:+.2f} [{test.ci_low:+.2f}, {test.ci_high:+.2f}]"


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.3f}x"


def _percent(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else "<1%"


def main(
    config: str | None = None, limit: int | None = None, concurrency: int = 64, data: str | None = None
) -> int:
    results, tracking = asyncio.run(run_demo(config, data=data, limit=limit, concurrency=concurrency))
    print()
    print(render(results))
    print()
    for r in results:
        print(f"  {r.arm.name:<28} {r.arm.description}  (MLflow run {r.run_id})")
    print()
    print("Open the MLflow UI on these runs:")
    print(f"  {tracking.ui_command()}")
    print()
    print(f"Deeper: {DEEPER} (in the repository) asks whether a difference is real on several metrics.")
    return 0
