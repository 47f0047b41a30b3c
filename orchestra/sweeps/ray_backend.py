"""`orchestra sweep FILE --backend ray`: a sweep's arms, or shards of their prompts, as Ray tasks.

The driver (this process) does what the local backend does around the arms: the parent run and
its lease, each arm's lease, run and end, the summary. The prompts of an arm run as Ray tasks
(`shard_size` prompts each; default: the whole arm, which keeps history-based routing exactly as
it is locally), at most `workers` at once, logging to the arm's run through each worker's own
journal. Request ids are the sweep's (`request_ids.py`), so a shard whose worker died is run
again (once, by Ray) without counting anything twice: the driver counts the shard's outcomes
from the attempt that finished, and its rows and traces are written under the same ids.

Rate limits and budgets are the cluster's (`resilience/cluster.py`): one `LimitsLedger` actor per
sweep. Progress comes back from the workers in batches; the driver shows one tqdm bar and logs
each arm's `requests_done` at the same steps as the local backend.

    summary = run_sweep("experiments/alpacaeval_routing.yaml", backend=RayOptions(workers=2))
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from orchestra.config.loader import settings_from_dict
from orchestra.errors import OrchestraError
from orchestra.resilience.cluster import ClusterLimits, ClusterLimitsSpec
from orchestra.resilience.factory import using_limits
from orchestra.resilience.ledger import LimitsLedger
from orchestra.sweeps.arms import Outcome, answer_all, summarize_outcomes
from orchestra.sweeps.spec import Arm, SweepSpec, apply_overrides
from orchestra.tracking.lease import Lease, lease_for
from orchestra.tracking.params import settings_params
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tags import ARM_TAG, KIND_TAG, SWEEP_TAG
from orchestra.tracking.tracker import RunHandle, RunStats, Tracker

_POLL_S = 0.2
"""How often the driver collects progress, and a worker reports it."""


@dataclass
class RayOptions:
    """Where and how wide a sweep runs on Ray; `clock`/`sleep` replace the limits' time (tests)."""

    address: str | None = None
    """`auto`, `ray://HOST:10001`, or None for a local Ray instance started for the sweep."""
    workers: int | None = None
    """Shards running at once (default: the cluster's CPUs)."""
    shard_size: int | None = None
    """Prompts per task (default: a whole arm)."""
    batch: int = 16
    slack_s: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] | None = None
    ledger_name: str | None = None
    """A name for the ledger actor (so that a test or a monitor can ask it what it granted)."""


class SweepFailed(OrchestraError):
    """A shard failed on every attempt; its arm's run is marked FAILED."""


@dataclass
class ShardJob:
    """One task: a slice of an arm's prompts, and what a worker needs to run it."""

    config: dict[str, Any]
    config_path: Path
    arm: Arm
    start: int
    prompts: list[tuple[str, str]]
    request_ids: list[str]
    concurrency: int
    user_id: str
    tracking: TrackingSettings
    run_id: str
    run_key: str
    run_name: str
    limits: ClusterLimitsSpec | None
    progress: Any
    shard: str


@dataclass
class ShardResult:
    outcomes: list[Outcome]
    stats: RunStats


@dataclass
class _ArmState:
    arm: Arm
    handle: RunHandle
    lease: Lease
    shards: int
    results: dict[int, ShardResult] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    logged: int = 0


class Progress:
    """The Ray actor workers report finished prompts to (indices, so a retried shard's repeats
    are counted once); the driver drains it."""

    def __init__(self) -> None:
        self._new: list[tuple[str, list[int]]] = []

    def report(self, arm_id: str, indices: list[int]) -> None:
        self._new.append((arm_id, indices))

    def drain(self) -> list[tuple[str, list[int]]]:
        new, self._new = self._new, []
        return new


def execute_on_ray(
    options: RayOptions,
    spec: SweepSpec,
    identity: str,
    raw: dict[str, Any],
    arms: list[Arm],
    config_path: Path,
    tracker: Tracker,
    prompts: list[tuple[str, str]],
    progress: bool,
) -> Any:
    """Run the sweep's arms on Ray; returns the `SweepSummary` (see the module docstring)."""
    import ray

    from orchestra.sweeps.runner import (
        SweepSummary,
        _link_prompt_set,
        _log_summary,
        _parent,
        _summary,
        settle,
    )
    from orchestra.tracking.datasets import register_prompt_set

    workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    store = MlflowStore(tracker.settings)
    tracker.flush()
    parent_lease = lease_for(store, f"sweep-{identity}")
    parent_lease.acquire(wait=True)
    try:
        parent = _parent(store, tracker, spec, identity, len(arms), len(prompts))
        dataset = register_prompt_set(store, spec.name, prompts)
    finally:
        parent_lease.release()
    assert parent.run_id is not None
    ledger_options: dict[str, Any] = {"num_cpus": 0}
    if options.ledger_name:
        ledger_options["name"] = options.ledger_name
    ledger: Any = ray.remote(LimitsLedger).options(**ledger_options).remote(options.clock, options.slack_s)
    reporter: Any = ray.remote(Progress).options(num_cpus=0).remote()
    limits = ClusterLimitsSpec(
        ledger,
        workers,
        options.batch,
        slack_s=options.slack_s,
        clock=options.clock,
        sleep=options.sleep,
        estimate_offset=options.clock is time.time,  # an injected clock is one every process reads
    )
    bar = tqdm(
        total=len(arms) * len(prompts), desc=spec.name, disable=not progress, file=sys.stderr, unit="req"
    )
    skipped: list[str] = []
    try:
        waiting = list(arms)
        while waiting:
            held: list[tuple[Arm, Lease]] = []
            busy: list[tuple[Arm, Lease]] = []
            for arm in waiting:
                lease = lease_for(store, f"sweep-{identity}-{arm.arm_id}")
                (held if lease.acquire(wait=False) else busy).append((arm, lease))
            if not held:  # every arm left is run by another process: wait for the first
                arm, lease = busy.pop(0)
                print(f"  {arm.name}: run by {lease.holder}; waiting for it", file=sys.stderr)
                lease.acquire(wait=True)
                held.append((arm, lease))
            states = _start_arms(held, store, tracker, parent, spec, identity, raw, config_path, prompts)
            for arm, _ in held:
                if arm.arm_id not in states:
                    skipped.append(arm.name)
                    bar.update(len(prompts))
            jobs = _jobs(states, identity, options.shard_size, spec, raw, config_path, tracker, prompts)
            for job in jobs:
                job.limits, job.progress = limits, reporter
            _run_jobs(jobs, states, workers, reporter, tracker, prompts, bar)
            waiting = [arm for arm, _ in busy]
    finally:
        bar.close()
        ray.kill(ledger)
        ray.kill(reporter)
    settle(tracker)
    table = _summary(store, parent.run_id, arms)
    _log_summary(store, parent.run_id, table, spec.name)
    _link_prompt_set(store, dataset, parent.run_id, table)
    store.terminate(parent.run_id, "FINISHED")
    return SweepSummary(spec.name, parent.run_id, table, skipped=[a.name for a in arms if a.name in skipped])


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[None]:
    """Ray for the sweep: the running instance, else the cluster at `address`, else a small local
    one (CPUs for `workers`, a 100 MB object store, no dashboard), shut down at the end."""
    import ray

    if ray.is_initialized():
        yield
        return
    if options.address:
        ray.init(address=options.address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=options.workers or 2,
            object_store_memory=100 * 1024 * 1024,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        yield
    finally:
        ray.shutdown()


def _start_arms(
    held: list[tuple[Arm, Lease]],
    store: MlflowStore,
    tracker: Tracker,
    parent: RunHandle,
    spec: SweepSpec,
    identity: str,
    raw: dict[str, Any],
    config_path: Path,
    prompts: list[tuple[str, str]],
) -> dict[str, _ArmState]:
    """A run for each held arm that has not finished (the others' leases are released)."""
    from orchestra.sweeps.runner import _arm_finished, arm_params

    states = {}
    for arm, lease in held:
        if _arm_finished(store, parent.run_id or "", arm.arm_id):
            lease.release()
            continue
        settings = settings_from_dict(
            apply_overrides(raw, arm.overrides, arm.seed), base_dir=config_path.parent
        )
        params = {**settings_params(settings), **arm_params(arm)}
        tags = {KIND_TAG: "sweep-arm", ARM_TAG: arm.arm_id, SWEEP_TAG: identity}
        handle = tracker.start_run(arm.name, params=params, tags=tags, parent=parent)
        if handle.run_id is None:
            lease.release()
            raise SweepFailed(
                f"the tracking store did not create the run of arm {arm.name!r}; try again later"
            )
        states[arm.arm_id] = _ArmState(arm, handle, lease, 0)
    return states


def _jobs(
    states: dict[str, _ArmState],
    identity: str,
    shard_size: int | None,
    spec: SweepSpec,
    raw: dict[str, Any],
    config_path: Path,
    tracker: Tracker,
    prompts: list[tuple[str, str]],
) -> list[ShardJob]:
    """The arms' shards, in arm order; `limits` and `progress` are filled in by the caller."""
    from orchestra.sweeps.runner import arm_request_ids

    size = shard_size or max(len(prompts), 1)
    jobs = []
    for state in states.values():
        ids = arm_request_ids(identity, state.arm, len(prompts))
        starts = list(range(0, len(prompts), size)) or [0]
        state.shards = len(starts)
        for start in starts:
            assert state.handle.run_id is not None
            jobs.append(
                ShardJob(
                    raw,
                    config_path,
                    state.arm,
                    start,
                    prompts[start : start + size],
                    ids[start : start + size],
                    spec.concurrency,
                    spec.user_id,
                    tracker.settings,
                    state.handle.run_id,
                    state.handle.run_key,
                    state.arm.name,
                    None,
                    None,
                    uuid.uuid4().hex,
                )
            )
    return jobs


def _run_jobs(
    jobs: list[ShardJob],
    states: dict[str, _ArmState],
    workers: int,
    reporter: Any,
    tracker: Tracker,
    prompts: list[tuple[str, str]],
    bar: tqdm,
) -> None:
    """Run the shards, at most `workers` at once; end each arm's run when its shards are in."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=1)(run_shard)
    queue = list(jobs)
    running: dict[Any, ShardJob] = {}
    every = max(1, len(prompts) // 20)  # as the local backend: requests_done in ~20 steps
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                running[task.remote(job)] = job
            finished, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
            _progress(ray.get(reporter.drain.remote()), states, tracker, len(prompts), every, bar)
            for ref in finished:
                job = running.pop(ref)
                state = states[job.arm.arm_id]
                try:
                    state.results[job.start] = ray.get(ref)
                except Exception as err:
                    raise SweepFailed(
                        f"arm {job.arm.name!r}: a shard failed on every attempt: {err}"
                    ) from err
                if len(state.results) == state.shards:
                    _progress(ray.get(reporter.drain.remote()), states, tracker, len(prompts), every, bar)
                    _end_arm(state, tracker)
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        for state in states.values():
            if not state.handle.ended:
                tracker.end_run(state.handle, "FAILED")
                state.lease.release()
        raise


def _progress(
    reports: list[tuple[str, list[int]]],
    states: dict[str, _ArmState],
    tracker: Tracker,
    total: int,
    every: int,
    bar: tqdm,
) -> None:
    """Count newly finished prompts once each; log `requests_done` at the local backend's steps."""
    for arm_id, indices in reports:
        state = states.get(arm_id)
        if state is None:
            continue
        new = set(indices) - state.done
        state.done |= new
        bar.update(len(new))
        for done in range(state.logged + 1, len(state.done) + 1):
            if done % every == 0 or done == total:
                tracker.log_metrics(state.handle, {"requests_done": done}, step=done)
        state.logged = len(state.done)


def _end_arm(state: _ArmState, tracker: Tracker) -> None:
    from orchestra.sweeps.runner import arm_metrics

    outcomes = [outcome for start in sorted(state.results) for outcome in state.results[start].outcomes]
    state.handle.stats = merged_stats([state.results[start].stats for start in sorted(state.results)])
    tracker.end_run(state.handle, "FINISHED", arm_metrics(summarize_outcomes(outcomes)))
    state.lease.release()


def merged_stats(parts: list[RunStats]) -> RunStats:
    """One run's aggregates from its shards' (as if one process had logged every request)."""
    total = RunStats()
    for part in parts:
        for name in ("requests", "errors", "consensus", "cost_usd", "input_tokens", "output_tokens"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.latency_ms += part.latency_ms
        total.processing_ms += part.processing_ms
        total.quality_sum += part.quality_sum
        total.quality_n += part.quality_n
    return total


# ---- the worker side -------------------------------------------------------------------------

_TRACKERS: dict[str, Tracker] = {}
"""One tracker (journal, writer threads) per store in each worker process, kept between tasks:
a Ray worker runs many shards, and opening a journal and the store for each would cost seconds."""
_DATASETS: dict[tuple[str, str], Any] = {}


def run_shard(job: ShardJob) -> ShardResult:
    """Answer the shard's prompts into its arm's run (the Ray task; see the module docstring)."""
    return asyncio.run(_shard(job))


async def _shard(job: ShardJob) -> ShardResult:
    from orchestra.engine.orchestrator import Orchestra
    from orchestra.engine.runs import CURRENT_RUN
    from orchestra.providers.registry import load_dataset

    key = job.tracking.model_dump_json()
    tracker = _TRACKERS.get(key)
    if tracker is None:
        tracker = _TRACKERS[key] = Tracker(job.tracking)
    settings = settings_from_dict(
        apply_overrides(job.config, job.arm.overrides, job.arm.seed), base_dir=job.config_path.parent
    )
    datasets = {}
    for name in settings.datasets:
        cached = (str(job.config_path), name)
        if cached not in _DATASETS:
            _DATASETS[cached] = load_dataset(settings, name)
        datasets[name] = _DATASETS[cached]
    handle = tracker.attach_run(job.run_id, job.run_key, job.run_name)
    assert job.limits is not None
    limits = ClusterLimits(job.limits, scope=job.run_key)
    finished: list[int] = []
    reporting = asyncio.create_task(_report(job, finished))
    with using_limits(limits):  # its limiters and budgets (the run's too) are the cluster's
        orch = Orchestra(settings, tracker=tracker, datasets=datasets)
        token = CURRENT_RUN.set(handle)
        try:
            outcomes = await answer_all(
                orch,
                job.prompts,
                job.concurrency,
                request_ids=job.request_ids,
                on_each=lambda index: finished.append(job.start + index),
                user_id=job.user_id,
                session_id=job.arm.arm_id,
            )
        finally:
            CURRENT_RUN.reset(token)
            reporting.cancel()
            await orch.aclose()
            await limits.close()
    await asyncio.to_thread(tracker.flush)
    if finished:
        job.progress.report.remote(job.arm.arm_id, list(finished))
    return ShardResult(outcomes, handle.stats)


async def _report(job: ShardJob, finished: list[int]) -> None:
    """Send the prompts finished since the last report, every `_POLL_S` (not one call per prompt)."""
    while True:
        await asyncio.sleep(_POLL_S)
        if finished:
            batch = finished[:]
            del finished[: len(batch)]
            job.progress.report.remote(job.arm.arm_id, batch)
