"""Sweeps on a real local Ray instance (one per session): the same results and logged data as the
local backend; one rate limit and one budget across workers; a worker that dies mid-arm."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from orchestra.sweeps import run_sweep
from orchestra.sweeps.ray_backend import RayOptions
from orchestra.testing import FakeOpenAI
from orchestra.testing.clock import SharedClock
from orchestra.tracking.reader import load_requests
from orchestra.tracking.store import MlflowStore
from tests.test_sweeps import SMALL, sweep_tracking, write_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TIMING = ["timestamp", "processing_time_ms", "run_id", "run_key", "calls_json", "run_name"]
TIMING += ["start_ns", "end_ns", "route_start_ns", "route_end_ns", "consensus_start_ns", "consensus_end_ns"]
"""What may differ between two runs of the same seeded sweep: times, and the runs' ids."""


def arms_of(store: MlflowStore) -> dict[str, dict]:
    return {run["name"]: run for run in store.runs("tags.`orchestra.kind` = 'sweep-arm'")}


def comparable(runs: dict[str, dict], store: MlflowStore) -> dict[str, dict]:
    """Each arm run's params, metrics (timings left out, and the trace counts: each process logs
    its own, within a CPU budget) and requests_done history."""
    return {
        name: {
            "params": run["params"],
            "metrics": {
                k: v for k, v in run["metrics"].items() if not k.startswith(("processing_time", "traces_"))
            },
            "status": run["status"],
            "requests_done": sorted(
                (m.step, m.value) for m in store.client.get_metric_history(run["run_id"], "requests_done")
            ),
        }
        for name, run in runs.items()
    }


@pytest.mark.parametrize(
    "options",
    [RayOptions(workers=1), RayOptions(workers=2, shard_size=5)],
    ids=["whole-arms-1-worker", "shards-of-5-2-workers"],
)
def test_a_seeded_sweep_on_ray_logs_what_the_local_backend_logs(
    ray_cluster, options, tmp_path, empty_store_template
):
    arms = [
        {"name": "gpt-4", "routing.rules": [{"providers": ["gpt-4"]}]},
        {
            "name": "random",
            "routing.default_strategy": "random",
            "routing.rules": [{"providers": list(SMALL)}],
        },
        {"name": "consensus", "routing.rules": [{"providers": list(SMALL), "require_consensus": True}]},
    ]
    results = {}
    for backend in ("local", "ray"):
        folder = tmp_path / backend
        folder.mkdir()
        path = write_sweep(folder, arms=arms, limit=12, concurrency=3)
        tracking = sweep_tracking(folder, empty_store_template)
        summary = run_sweep(
            path, tracking=tracking, progress=False, backend=options if backend == "ray" else "local"
        )
        store = MlflowStore(tracking)
        rows = load_requests(tracking=tracking).drop(TIMING).sort("request_id")
        results[backend] = (summary.table.drop("run_id"), rows, comparable(arms_of(store), store))
    local, ray = results["local"], results["ray"]
    assert local[0].equals(ray[0])  # the summary table
    assert local[1].height == 36 and local[1].equals(ray[1])  # every request row, row for row
    for name, arm in local[2].items():  # each arm run's params, status, progress and metrics
        metrics = arm.pop("metrics")
        assert ray[2][name].pop("metrics") == pytest.approx(metrics, rel=1e-12)  # sums of shards
        assert ray[2][name] == arm


def limited_sweep(folder: Path, fake: FakeOpenAI, *, arms: int, prompts: int, **model) -> Path:
    """`arms` arms, each of `prompts` prompts, all calling one provider: the fake OpenAI server."""
    config = {
        "models": {
            "fake": {
                "type": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.base_url,
                "api_key": "test-key",
                **model,
            }
        },
        "routing": {"rules": [{"providers": ["fake"]}]},
        "performance": {"retry": {"max_attempts": 1}, "request_timeout": 600},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    sweep = {
        "name": "limited",
        "config": "config.yaml",
        "prompts": {"generated": {"template": "Question {n}?", "values": {"n": list(range(prompts))}}},
        "arms": [{"name": f"arm{i}", "framework.name": f"arm{i}"} for i in range(arms)],
        "concurrency": 4,
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return folder / "sweep.yaml"


def in_background(target, *args, **kwargs) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(target(*args, **kwargs))
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_four_workers_never_exceed_a_providers_requests_per_window(
    ray_cluster, tmp_path, empty_store_template
):
    """Four arms on four workers call one provider limited to 20 requests per 10 s. Time is a
    logical clock the test moves, only once every permit granted up to now has arrived at the
    fake server or was given back: no arrival can straddle a step, so the count is exact."""
    import ray

    clock = SharedClock(tmp_path / "clock")
    arrivals: list[float] = []

    def reply(prompt: str) -> str:
        arrivals.append(clock())  # stamped in logical time, at the provider
        return f"answer to {prompt}"

    name = f"ledger-{os.getpid()}-{tmp_path.name}"
    options = RayOptions(workers=4, clock=clock, sleep=clock.sleep, slack_s=0.0, ledger_name=name)
    with FakeOpenAI(reply=reply) as fake:
        path = limited_sweep(
            tmp_path, fake, arms=4, prompts=15, rate_limit={"requests": 20, "per_seconds": 10}
        )
        tracking = sweep_tracking(tmp_path, empty_store_template)
        thread, outcome = in_background(run_sweep, path, tracking=tracking, progress=False, backend=options)
        ledger = key = None
        give_up = time.monotonic() + 300  # only turns a hang into a failure; no outcome depends on it
        while thread.is_alive() and time.monotonic() < give_up:
            thread.join(0.01)
            if ledger is None:
                try:
                    ledger = ray.get_actor(name)
                except ValueError:
                    continue
            try:
                key = key or next(iter(ray.get(ledger.keys.remote())), None)
                grants = ray.get(ledger.grants.remote(key))
            except ray.exceptions.RayActorError:
                break  # the sweep has ended
            if key is None:
                continue  # no permit asked for yet
            now = clock()
            due = sum(1 for at in grants["granted"] if at <= now) - sum(
                1 for at in grants["returned"] if at <= now
            )
            if len(arrivals) == due:
                later = [at for at in grants["granted"] if at > now]
                clock.set(min(later) if later else now + 10.0)
        thread.join(60)
    assert outcome and not isinstance(outcome[0], BaseException), outcome
    assert outcome[0].table["requests"].to_list() == [15] * 4 and outcome[0].table["errors"].sum() == 0
    stamps = sorted(arrivals)
    assert len(stamps) == 60
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 10.0  # any 21 arrivals span more than a window
    assert max(stamps) >= 20.0  # the limit did hold calls back: 60 calls needed three windows


def test_a_run_budget_holds_across_the_shards_of_an_arm(ray_cluster, tmp_path, empty_store_template):
    """One arm in four shards on four workers shares one run budget of about 8 calls' worst case;
    four budgets of one each would let about 32 calls through."""
    words = 40
    with FakeOpenAI(reply=lambda prompt: " ".join(["word"] * words)) as fake:
        price = {"input_per_1m": 1000.0, "output_per_1m": 1000.0}
        path = limited_sweep(tmp_path, fake, arms=1, prompts=40, price=price, max_tokens=words)
        config = yaml.safe_load((tmp_path / "config.yaml").read_text())
        worst = (words + 3) * 1000.0 / 1e6  # output at max_tokens, input estimated at ~3 tokens
        config["performance"]["run_budget_usd"] = 8 * worst
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        tracking = sweep_tracking(tmp_path, empty_store_template)
        summary = run_sweep(
            path, tracking=tracking, progress=False, backend=RayOptions(workers=4, shard_size=10)
        )
        calls = len(fake.calls)
    rows = load_requests(tracking=tracking)
    spent = rows["cost_usd"].sum()
    in_flight = 4 * 4  # workers x concurrency: the calls that can be under way at once
    assert spent <= 8 * worst + in_flight * worst
    refused = rows.filter(pl.col("error_type") == "BudgetExceeded")
    assert refused.height > 0 and calls == rows.height - refused.height  # refused before the call
    assert 0 < calls <= 8 + in_flight
    assert summary.table["errors"].to_list() == [refused.height]


def test_a_worker_that_dies_mid_arm_is_retried_once_and_nothing_is_counted_twice(
    ray_cluster, tmp_path, empty_store_template
):
    """At the 6th provider call the test kills the Ray worker running the arm's shard (its process
    title is `ray::run_shard`); Ray runs the shard again, with the same request ids."""
    calls = 0
    killed: list[int] = []
    lock = threading.Lock()

    def reply(prompt: str) -> str:
        nonlocal calls
        with lock:
            calls += 1
            if calls == 6 and not killed:
                (pid,) = shard_workers()
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return f"answer to {prompt}"

    with FakeOpenAI(reply=reply) as fake:
        path = limited_sweep(tmp_path, fake, arms=1, prompts=24)
        tracking = sweep_tracking(tmp_path, empty_store_template)
        summary = run_sweep(path, tracking=tracking, progress=False, backend=RayOptions(workers=1))
    assert killed
    (row,) = summary.table.iter_rows(named=True)
    assert row["requests"] == 24 and row["errors"] == 0
    store = MlflowStore(tracking)
    (arm,) = arms_of(store).values()
    assert arm["metrics"]["requests"] == 24 and arm["status"] == "FINISHED"
    assert max(v for _, v in comparable({"a": arm}, store)["a"]["requests_done"]) == 24
    rows = load_requests(tracking=tracking)
    assert rows.height == 24 and rows["request_id"].n_unique() == 24
    assert calls >= 24 + 6  # the shard was answered again from its first prompt


def shard_workers() -> list[int]:
    """Processes running a shard now (Ray titles a worker by the task it runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::run_shard"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
