"""`orchestra sweep experiments/NAME.yaml`: every arm as an MLflow run under one parent run.

Resumable: the parent run is found again by the sweep's identity (a hash of the sweep file and
its config), arms whose run finished are skipped, and an arm interrupted midway is marked
superseded (KILLED if still RUNNING; FAILED if its crashed process's journal was recovered)
before it runs again, so nothing is counted twice. At the end the summary table and the
cost-quality plot are printed and logged as artifacts of the parent run. The prompt set is an
MLflow evaluation dataset (`tracking/datasets.py`), the input of the parent and every arm run.

Safe across processes: the parent run is found or created under a lease, and each arm runs
under its own lease (a lock file beside a SQLite store, an experiment tag with a heartbeat on a
server; see `tracking/lease.py`). A second start of the same sweep runs the arms nobody holds and
waits for the others, so each arm runs once and both end with the same summary.

Request ids are the sweep's (`tracking/request_ids.py`): an arm that runs again writes the same
rows and traces again, which `load_requests` reads once. With `backend="ray"` the arms run as Ray
tasks (`ray_backend.py`).

    summary = run_sweep("experiments/alpacaeval_routing.yaml")
    summary = run_sweep("experiments/alpacaeval_routing.yaml", dry_run=True)   # arms, calls, cost
    summary = run_sweep("experiments/alpacaeval_routing.yaml", backend="ray")  # on a local Ray
"""

from __future__ import annotations

import asyncio
import html
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from tqdm.auto import tqdm

from orchestra.config.loader import settings_from_dict
from orchestra.engine.options import DEFAULT_OPTIONS
from orchestra.engine.orchestrator import Orchestra
from orchestra.engine.request import model_request
from orchestra.errors import TrackingStoreError
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import load_dataset
from orchestra.sweeps.arms import OutcomeSummary, answer_all, summarize_outcomes
from orchestra.sweeps.prompts import load_prompts
from orchestra.sweeps.spec import Arm, SweepSpec, apply_overrides, expand_arms, read_sweep
from orchestra.sync import run_sync
from orchestra.tracking.datasets import link_runs, register_prompt_set
from orchestra.tracking.lease import lease_for
from orchestra.tracking.outcome import FlushResult
from orchestra.tracking.request_ids import sweep_request_id
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tags import ARM_TAG, KIND_TAG, RUN_KEY_TAG, SUPERSEDED_TAG, SWEEP_TAG
from orchestra.tracking.tracker import RunHandle, Tracker

if TYPE_CHECKING:
    from orchestra.sweeps.ray_backend import RayOptions


@dataclass
class ArmPlan:
    arm: Arm
    calls: int
    cost_usd: float
    cost_is_estimate: bool


@dataclass
class SweepSummary:
    name: str
    parent_run_id: str | None
    table: pl.DataFrame
    skipped: list[str] = field(default_factory=list)
    plans: list[ArmPlan] = field(default_factory=list)

    def _repr_html_(self) -> str:
        """In Jupyter: the sweep's table (the plan, after a dry run) and what was skipped."""
        kind = "plan" if self.plans else f"parent run {self.parent_run_id}"
        head = f"<p><b>Sweep {html.escape(self.name)}</b> ({kind})</p>"
        skipped = (
            f"<p>Skipped, already complete: {html.escape(', '.join(self.skipped))}</p>"
            if self.skipped
            else ""
        )
        return head + self.table._repr_html_() + skipped


def run_sweep(
    path: str | Path,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    tracking: TrackingSettings | None = None,
    progress: bool = True,
    backend: Literal["local", "ray"] | RayOptions = "local",
) -> SweepSummary:
    """Run (or resume, or plan with `dry_run`) the sweep described by `path`; `backend="ray"`
    (or `RayOptions(address=..., workers=...)`) runs its arms on a Ray cluster."""
    sweep = _sweep(path, dry_run=dry_run, limit=limit, tracking=tracking, progress=progress, backend=backend)
    if backend == "local" or dry_run:
        return run_sync(sweep)
    from orchestra.sweeps.ray_backend import RayOptions, ray_session

    with ray_session(backend if isinstance(backend, RayOptions) else RayOptions()):  # from this thread
        return run_sync(sweep)


async def _sweep(
    path: str | Path,
    *,
    dry_run: bool,
    limit: int | None,
    tracking: TrackingSettings | None,
    progress: bool,
    backend: Literal["local", "ray"] | RayOptions = "local",
) -> SweepSummary:
    sweep = read_sweep(path)
    spec, raw, config_path = sweep.spec, sweep.config, sweep.config_path
    arms = expand_arms(spec)
    base = settings_from_dict(apply_overrides(raw, {}, arms[0].seed), base_dir=config_path.parent)
    datasets = {name: load_dataset(base, name) for name in base.datasets}  # shared by every arm
    prompts = load_prompts(spec.prompts, sweep.folder, datasets, base.framework.default_task_type)
    if limit:
        prompts = prompts[:limit]
    tracking = tracking or load_tracking_settings(search_from=base.base_dir)
    if dry_run:
        tracking = tracking.model_copy(update={"enabled": False})
    tracker = Tracker(tracking)
    try:
        if dry_run:
            plans = [await _plan(raw, arm, config_path, tracker, datasets, prompts) for arm in arms]
            return SweepSummary(spec.name, None, _plan_table(plans), plans=plans)
        if backend != "local":
            from orchestra.sweeps.ray_backend import RayOptions, execute_on_ray

            options = backend if isinstance(backend, RayOptions) else RayOptions()
            return await asyncio.to_thread(
                execute_on_ray,
                options,
                spec,
                sweep.identity,
                raw,
                arms,
                config_path,
                tracker,
                prompts,
                progress,
            )
        return await _execute(
            spec, sweep.identity, raw, arms, config_path, tracker, datasets, prompts, progress
        )
    finally:
        tracker.close()


async def _execute(
    spec: SweepSpec,
    identity: str,
    raw: dict[str, Any],
    arms: list[Arm],
    config_path: Path,
    tracker: Tracker,
    datasets: dict[str, ReplayDataset],
    prompts: list[tuple[str, str]],
    progress: bool,
) -> SweepSummary:
    store = MlflowStore(tracker.settings)
    # What an earlier, crashed attempt left in its journal is written (and its runs closed) first.
    await asyncio.to_thread(tracker.flush)
    parent_lease = lease_for(store, f"sweep-{identity}")
    await asyncio.to_thread(parent_lease.acquire, wait=True)
    try:
        parent = _parent(store, tracker, spec, identity, len(arms), len(prompts))
        dataset = register_prompt_set(store, spec.name, prompts)
    finally:
        parent_lease.release()
    assert parent.run_id is not None
    skipped: list[str] = []
    bar = tqdm(
        total=len(arms) * len(prompts), desc=spec.name, disable=not progress, file=sys.stderr, unit="req"
    )

    async def attempt(arm: Arm, wait: bool) -> bool:
        """Run the arm unless it is finished; False if another process holds it (and not `wait`)."""
        lease = lease_for(store, f"sweep-{identity}-{arm.arm_id}")
        if not await asyncio.to_thread(lease.acquire, wait=False):
            if not wait:
                return False
            print(f"  {arm.name}: run by {lease.holder}; waiting for it", file=sys.stderr)
            await asyncio.to_thread(lease.acquire, wait=True)
        try:
            if _arm_finished(store, parent.run_id, arm.arm_id):
                skipped.append(arm.name)
                bar.update(len(prompts))
                return True
            settings = settings_from_dict(
                apply_overrides(raw, arm.overrides, arm.seed), base_dir=config_path.parent
            )
            orch = Orchestra(settings, tracker=tracker, datasets=datasets)
            await _run_arm(orch, spec, identity, arm, parent, prompts, bar)
            await orch.aclose()
            return True
        finally:
            await asyncio.to_thread(lease.release)

    # Arms another process is running (the same sweep started twice) are left to it, and
    # waited for at the end: each arm runs once, and both processes end with the full summary.
    busy = [arm for arm in arms if not await attempt(arm, wait=False)]
    for arm in busy:
        await attempt(arm, wait=True)
    bar.close()
    await asyncio.to_thread(settle, tracker)
    table = _summary(store, parent.run_id, arms)
    _log_summary(store, parent.run_id, table, spec.name)
    _link_prompt_set(store, dataset, parent.run_id, table)
    store.terminate(parent.run_id, "FINISHED")
    return SweepSummary(spec.name, parent.run_id, table, skipped=[a.name for a in arms if a.name in skipped])


def _parent(
    store: MlflowStore, tracker: Tracker, spec: SweepSpec, identity: str, arms: int, prompts: int
) -> RunHandle:
    """The sweep's parent run: found again when resuming (and RUNNING again), else created."""
    existing = store.runs(f"tags.`{SWEEP_TAG}` = '{identity}' and tags.`{KIND_TAG}` = 'sweep'")
    if existing:
        run = existing[0]
        if run["status"] != "RUNNING":
            store.client.update_run(run["run_id"], status="RUNNING")
        return tracker.attach_run(run["run_id"], run["tags"].get(RUN_KEY_TAG, run["run_id"]), run["name"])
    params = {
        "sweep.name": spec.name,
        "sweep.arms": arms,
        "sweep.prompts": prompts,
        "sweep.description": spec.description,
    }
    return tracker.start_run(spec.name, params=params, tags={KIND_TAG: "sweep", SWEEP_TAG: identity})


def _arm_finished(store: MlflowStore, parent_id: str, arm_id: str) -> bool:
    """Whether the arm has a finished run; an interrupted attempt (its process is gone: its
    lease is ours now) is closed as KILLED if still RUNNING and marked superseded."""
    finished = False
    for run in store.runs(f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{ARM_TAG}` = '{arm_id}'"):
        if run["tags"].get(SUPERSEDED_TAG) == "true":
            continue
        if run["status"] == "FINISHED":
            finished = True
            continue
        store.set_tags(run["run_id"], {SUPERSEDED_TAG: "true"})
        if run["status"] == "RUNNING":
            store.terminate(run["run_id"], "KILLED")
    return finished


async def _run_arm(
    orch: Orchestra,
    spec: SweepSpec,
    identity: str,
    arm: Arm,
    parent: RunHandle,
    prompts: list[tuple[str, str]],
    bar: tqdm,
) -> None:
    every = max(1, len(prompts) // 20)  # progress is logged as the metric requests_done (~20 steps)

    def on_done(done: int) -> None:
        bar.update(1)
        if done % every == 0 or done == len(prompts):
            assert scope.handle is not None
            orch.tracker.log_metrics(scope.handle, {"requests_done": done}, step=done)

    params = arm_params(arm)
    tags = {KIND_TAG: "sweep-arm", ARM_TAG: arm.arm_id, SWEEP_TAG: identity}
    async with orch.run(arm.name, params=params, tags=tags, parent=parent) as scope:
        outcomes = await answer_all(
            orch,
            prompts,
            spec.concurrency,
            on_done,
            request_ids=arm_request_ids(identity, arm, len(prompts)),
            user_id=spec.user_id,
            session_id=arm.arm_id,
        )
        scope.log_metrics(arm_metrics(summarize_outcomes(outcomes)))


def arm_request_ids(identity: str, arm: Arm, prompts: int) -> list[str]:
    """The request id of each prompt of the arm: the same whenever the arm runs again."""
    return [sweep_request_id(identity, arm.arm_id, index) for index in range(prompts)]


def arm_params(arm: Arm) -> dict[str, Any]:
    return {
        **{f"arm.{k}": v for k, v in arm.overrides.items()},
        "arm.seed": arm.seed,
        "arm.repetition": arm.repetition,
    }


def arm_metrics(summary: OutcomeSummary) -> dict[str, float]:
    """What the summary needs from an arm, logged with its run (so a resumed sweep can read it)."""
    metrics: dict[str, float] = {
        "sweep.requests": float(summary.requests),
        "sweep.errors": float(summary.errors),
    }
    if summary.cost_per_request is not None:
        metrics["sweep.cost_per_request_usd"] = summary.cost_per_request
    if summary.latency_ms is not None:
        metrics["sweep.latency_ms_mean"] = summary.latency_ms
    if summary.calls_per_request is not None:
        metrics["sweep.calls_per_request"] = summary.calls_per_request
    if summary.win_rate is not None:
        metrics |= {
            "sweep.win_rate": summary.win_rate.percent,
            "sweep.win_rate_low": summary.win_rate.low,
            "sweep.win_rate_high": summary.win_rate.high,
        }
    for provider, share in summary.answered_share.items():
        metrics[f"sweep.share.{provider}"] = share
    return metrics


SETTLE_FLUSHES = 20
"""Flushes `settle` makes while other writers hold the store's lock (each flush makes its own
passes with pauses of up to 2 s)."""


def settle(tracker: Tracker) -> FlushResult:
    """Flush until every record and run operation is in the store: the summary is read back from
    it, so a run end still in the journal would be an arm missing from the summary. Other writers
    holding a SQLite store's lock (a Ray sweep's shards) only delay this; a store that cannot be
    written raises `TrackingStoreError` instead of a summary without the arms it has not got."""
    result = tracker.flush()
    for _ in range(SETTLE_FLUSHES):
        if not result.pending or not (result.error is None or result.contended):
            break
        result = tracker.flush()
    if result.pending:
        raise TrackingStoreError(
            f"the sweep's summary is read from the tracking store, which does not have everything yet "
            f"({result}); it is kept in the journal {result.journal} and written when the store can "
            "take it: run the sweep again to finish its summary"
        )
    return result


def _summary(store: MlflowStore, parent_id: str, arms: list[Arm]) -> pl.DataFrame:
    """One row per arm, from its finished run (the latest one when an arm ran more than once)."""
    runs = {}
    for run in store.runs(f"tags.`mlflow.parentRunId` = '{parent_id}'"):
        tags = run["tags"]
        if run["status"] == "FINISHED" and tags.get(SUPERSEDED_TAG) != "true" and ARM_TAG in tags:
            runs.setdefault(tags[ARM_TAG], run)  # newest first
    rows = []
    for arm in arms:
        run = runs.get(arm.arm_id)
        if run is None:
            continue
        m = run["metrics"]
        shares = sorted(
            ((k.removeprefix("sweep.share."), v) for k, v in m.items() if k.startswith("sweep.share.")),
            key=lambda item: -item[1],
        )
        rows.append(
            {
                "arm": arm.name,
                "run_id": run["run_id"],
                "requests": int(m.get("sweep.requests", 0)),
                "errors": int(m.get("sweep.errors", 0)),
                "win_rate": m.get("sweep.win_rate"),
                "win_rate_low": m.get("sweep.win_rate_low"),
                "win_rate_high": m.get("sweep.win_rate_high"),
                "cost_per_request_usd": m.get("sweep.cost_per_request_usd"),
                "latency_ms_mean": m.get("sweep.latency_ms_mean"),
                "calls_per_request": m.get("sweep.calls_per_request"),
                "answered_by": ", ".join(f"{p} {s:.0%}" for p, s in shares),
            }
        )
    return pl.DataFrame(rows)


def _link_prompt_set(store: MlflowStore, dataset: Any, parent_id: str, table: pl.DataFrame) -> None:
    """The prompt set is the input of the parent run and of each arm's run in the summary."""
    link_runs(store, dataset, [parent_id, *table.get_column("run_id", default=pl.Series([]))])


def _log_summary(store: MlflowStore, parent_id: str, table: pl.DataFrame, name: str) -> None:
    from orchestra.analysis.plots import frontier_plot

    with tempfile.TemporaryDirectory(prefix="orchestra-sweep-") as scratch:
        folder = Path(scratch)
        table.write_csv(folder / "summary.csv")
        (folder / "summary.html").write_text(
            f"<html><body><h3>{name}</h3>{table.to_pandas().to_html(index=False)}</body></html>",
            encoding="utf-8",
        )
        files = [folder / "summary.csv", folder / "summary.html"]
        points = (
            table.filter(pl.col("win_rate").is_not_null() & (pl.col("cost_per_request_usd") > 0))
            if table.height
            else table
        )
        if points.height:
            figure = frontier_plot(
                points.select(
                    pl.col("arm").alias("name"),
                    pl.col("cost_per_request_usd").alias("cost"),
                    pl.col("win_rate").alias("quality"),
                    pl.lit("arm").alias("kind"),
                ),
                cost="cost",
                quality="quality",
                title=f"{name}: cost per request vs win rate",
            )
            figure.savefig(folder / "frontier.png", dpi=120)
            files.append(folder / "frontier.png")
        for file in files:
            store.log_artifact_file(parent_id, file, "sweep")


async def _plan(
    raw: dict[str, Any],
    arm: Arm,
    config_path: Path,
    tracker: Tracker,
    datasets: dict[str, ReplayDataset],
    prompts: list[tuple[str, str]],
) -> ArmPlan:
    """Route every prompt (no provider is called) to count calls and price them."""
    settings = settings_from_dict(apply_overrides(raw, arm.overrides, arm.seed), base_dir=config_path.parent)
    orch = Orchestra(settings, tracker=tracker, datasets=datasets)
    calls, cost, estimated = 0, 0.0, False
    for prompt, task_type in prompts:
        decision = await orch.task_router.evaluate_and_route(prompt, task_type)
        for name in decision.chosen:
            calls += 1
            request = model_request(orch.settings, name, prompt, DEFAULT_OPTIONS)
            known = orch.model_registry.get(name).estimate_cost(request)
            if known is None:  # the guard's worst case: estimated input, output at max_tokens
                _, known = orch.guard_for(name).estimate(request)
                estimated = True
            cost += known
    await orch.aclose()
    return ArmPlan(arm, calls, cost, estimated)


def _plan_table(plans: list[ArmPlan]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "arm": p.arm.name,
                "arm_id": p.arm.arm_id,
                "calls": p.calls,
                "cost_usd": p.cost_usd,
                "cost_is_upper_bound": p.cost_is_estimate,
            }
            for p in plans
        ]
    )


def render(summary: SweepSummary) -> str:
    """The summary (or the plan) as text."""
    lines = [f"sweep {summary.name}"]
    if summary.plans:
        total_calls = sum(p.calls for p in summary.plans)
        total_cost = sum(p.cost_usd for p in summary.plans)
        for plan in summary.plans:
            bound = " (upper bound)" if plan.cost_is_estimate else ""
            lines.append(f"  {plan.arm.name:<60} {plan.calls:>7} calls  ${plan.cost_usd:,.4f}{bound}")
        lines.append(f"  {len(summary.plans)} arms, {total_calls} calls, ${total_cost:,.4f} expected")
        return "\n".join(lines)
    if summary.skipped:
        lines.append(f"  resumed: {len(summary.skipped)} finished arm(s) skipped")
    for row in summary.table.iter_rows(named=True):
        rate = (
            ""
            if row["win_rate"] is None
            else f"{row['win_rate']:.2f}% [{row['win_rate_low']:.2f}, {row['win_rate_high']:.2f}]"
        )
        cost = row["cost_per_request_usd"] or math.nan
        lines.append(f"  {row['arm']:<60} {rate:<24} ${cost:.5f}/req  {row['answered_by']}")
    lines.append(
        f"  parent run {summary.parent_run_id}; summary.csv, summary.html and frontier.png logged to it"
    )
    return "\n".join(lines)


def main(
    path: str,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    backend: Literal["local", "ray"] = "local",
    address: str | None = None,
    workers: int | None = None,
    shard_size: int | None = None,
) -> int:
    started = time.perf_counter()
    chosen: Literal["local", "ray"] | RayOptions = backend
    if backend == "ray":
        from orchestra.sweeps.ray_backend import RayOptions

        chosen = RayOptions(address=address, workers=workers, shard_size=shard_size)
    summary = run_sweep(path, dry_run=dry_run, limit=limit, backend=chosen)
    print(render(summary))
    if not dry_run:
        print(f"  {time.perf_counter() - started:.1f} s")
    return 0
