"""Fan-out side by side: the bare `openai` SDK, orchestra (logging on and off), LiteLLM's Router, and
the SDK under MLflow's own tracing, at equal concurrency against one local 200 ms OpenAI-format server.

    .venv/bin/python benchmarks/fanout.py [--requests 2000] [--low-requests 200] [--rounds 3] [--quick]
        [--baseline DIR]   # also orchestra (logging on) from another tree, e.g. `git archive main`

Set-up (the same for every client):
- the server is `python -m orchestra.testing openai --latency 0.2` in its own process;
- each client runs in its own fresh process (no shared GIL, no shared caches), one after another;
  rounds alternate the clients (the order rotates each round) and the medians are reported;
- every client is driven by the same loop: an `asyncio.Semaphore(C)` outside the client, C = 200
  (then 10) in flight, and `asyncio.gather` over all requests; orchestra's
  `performance.max_concurrent_requests` is set to C too, so its own gate never holds a request back;
- overhead is measured from outside the client: the time from getting a slot to the reply, minus the
  server's 200 ms (it includes event-loop waiting, the SDK, and the server's own processing, which is
  the same for all clients);
- CPU is the client process's CPU time plus that of all its children (orchestra's trace-writer
  process), from after the warm-up until everything is written (`flush()` returned);
- drain is the time from the last reply until `flush()` returns (orchestra, logging on) or until
  MLflow's async trace queue is empty (`mlflow.flush_trace_async_logging`);
- retries: the SDK's default 2, orchestra's default 3 attempts, LiteLLM `num_retries=2` (no failure
  happens, so no retry is made); LiteLLM has no callbacks and `LITELLM_LOCAL_MODEL_COST_MAP=True`
  (installed by the `bench` extra);
- the MLflow peer is the bare SDK with `mlflow.openai.autolog()` (defaults) into a SQLite store:
  its traces per second are the traces found in the store over wall + drain time, and lost ones are
  the requests without a trace;
- orchestra logs with its defaults (`traces: budget`): `traces_written_live` and `traces_deferred`
  count the timed requests' traces written while they ran and those left for later (the request
  table has every one); after the client closes, `materialise_traces(run_id)` (what `orchestra
  traces RUN_ID` runs) writes the deferred ones and `materialise_traces_per_s` is its rate (the
  request table read back and the store's lookups included).

Where the CPU goes (py-spy 0.4.3 on the orchestra worker and its trace-writer child, 2,000
requests at 200 in flight; CPU from this script; the store's limit from trace_store_floor.py):
- the bare SDK costs ~2.5 ms of CPU per request at 200 in flight (httpcore checks every pooled
  connection for each request, pydantic transforms the request and parses the reply, asyncio).
  At 200 in flight the client process is CPU-bound (its CPU time is about its wall time), so
  each ms of CPU that orchestra adds in the client shows up in the wall time: 1.10x the bare SDK
  leaves ~0.25 ms per request for routing, guards, records and logging together;
- orchestra's request path adds ~0.75 ms per request (logging off): routing, the provider guard
  (budget estimate and the catalogue price, asked twice per request: 0.1 ms each until the cost
  was cached per price in force), the request record and the result's metadata;
- logging added ~4 ms per request when every trace was written live: ~0.5 ms in the client
  (journal and rows threads) and ~3.3 ms in the trace-writer child, 88% of it inside MLflow's
  `SqlAlchemyStore.log_spans` (per trace a flush for the new trace row, merges that read before
  they write metadata and tags, an update, the link to the run) and ~7% in orchestra's span
  building and record decoding. The child wrote ~135-200 traces/s, so 2,000 requests left a
  6-8 s drain. With `traces: budget` (the default since) the child spends what the budget
  allows (0.2 ms per request plus 20 ms per second) and defers the rest: logging costs the
  client's share plus ~0.3 ms per request at 200 in flight, and the drain is the request
  table's last part;
- the store's own limit: the same rows inserted with SQLAlchemy Core take 0.10 ms of CPU per
  trace (~4,500 traces/s) against 3.3 ms (~200/s) through `log_spans`;
- the client's share (per-thread CPU from /proc/self/task over 3,000 requests at 200 in flight,
  py-spy on each thread): the event loop's own logging work is small (`Tracker.submit` and the
  trace id: <1% of its samples), but it runs ~0.2 ms per request slower with the logging
  threads competing for the GIL. The journal thread costs ~0.09 ms per request (about 70% of
  its samples the WAL commit every `sync_interval_s`, which the durability promise fixes;
  sanitising and encoding ~20%). The rows thread cost 0.21-0.24 ms per request: 43% MLflow
  `log_batch` for the router's metrics (a store commit every 100 requests), ~25% decoding
  records from the journal's JSON into `RequestRecord`s and flattening them again, ~12%
  re-counting the unplanned rows every 0.2 s. Now metrics wait in the journal up to 5 s (or a
  flush, or the next run operation) and go in one call per run, a part's rows are built
  straight from the JSON, and unplanned rows are counted at most every tenth of
  `part_interval_s`: the rows thread costs 0.10-0.14 ms per request. `--baseline DIR` runs
  another tree's orchestra (logging on) in the same rounds, for a before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

LATENCY_S = 0.2
MODEL = "gpt-4o-mini"
CLIENTS = ["bare_sdk", "orchestra_log", "orchestra_nolog", "litellm", "mlflow_autolog"]
LOW_CLIENTS = ["bare_sdk", "orchestra_log", "orchestra_nolog", "litellm"]
LABELS = {
    "bare_sdk": "bare openai SDK",
    "orchestra_log": "orchestra, logging on",
    "orchestra_nolog": "orchestra, logging off",
    "litellm": "LiteLLM Router.acompletion",
    "mlflow_autolog": "SDK + mlflow.openai.autolog()",
    "orchestra_log_baseline": "baseline tree, logging on",
}
BASELINE = "orchestra_log_baseline"
"""With `--baseline DIR`: the orchestra worker of DIR (its fanout.py, its orchestra package)."""

Call = Callable[[int], Awaitable[Any]]


# ---- the worker: one client in its own process -------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of all its children (live ones and those already waited for)."""
    import psutil

    me = psutil.Process()
    own = me.cpu_times()
    children = own.children_user + own.children_system
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
            children += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return own.user + own.system, children


async def drive(call: Call, n: int, concurrency: int) -> tuple[float, list[float]]:
    """Run `call(0..n-1)` with `concurrency` in flight; the wall time and each request's overhead (ms)."""
    slots = asyncio.Semaphore(concurrency)
    overheads = [0.0] * n

    async def one(i: int) -> None:
        async with slots:
            got_slot = time.perf_counter()
            await call(i)
            overheads[i] = (time.perf_counter() - got_slot - LATENCY_S) * 1000

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started, overheads


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}]


async def run_client(client: str, base_url: str, n: int, concurrency: int, folder: Path) -> dict[str, Any]:
    """Warm the client up, then time `n` requests; returns wall, drain, cpu and overheads."""
    setups = {
        "bare_sdk": bare_sdk,
        "orchestra_log": orchestra_logging,
        "orchestra_nolog": orchestra_logging,
        "litellm": litellm_router,
        "mlflow_autolog": mlflow_autolog,
    }
    call, finish, close, extra = await setups[client](client, base_url, concurrency, folder)
    await drive(call, concurrency, concurrency)  # warm-up: open the connections, start the writers
    await finish()
    counted_before = await extra()
    cpu_before = cpu_seconds()
    wall, overheads = await drive(call, n, concurrency)
    last_reply = time.perf_counter()
    await finish()
    drain = time.perf_counter() - last_reply
    cpu_after = cpu_seconds()
    own, children = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    result = {
        "wall_s": wall,
        "drain_s": drain,
        "cpu_s": own + children,
        "children_cpu_s": children,
        "overheads_ms": overheads,
    }
    counted = await extra()
    result.update({key: value - counted_before[key] for key, value in counted.items()})
    result.update(await close() or {})
    return result


async def nothing() -> dict[str, Any]:
    return {}


async def bare_sdk(_: str, base_url: str, __: int, ___: Path) -> tuple:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=2, timeout=60)

    async def call(i: int) -> Any:
        return await client.chat.completions.create(model=MODEL, messages=messages(i))

    async def finish() -> None:
        return None

    return call, finish, client.close, nothing


async def orchestra_logging(client: str, base_url: str, concurrency: int, folder: Path) -> tuple:
    from orchestra import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    config = {
        "models": {
            "openai": {"model": MODEL, "api_key": "bench", "base_url": base_url, "timeout": 60},
        },
        "routing": {"rules": [{"providers": ["openai"]}]},
        "performance": {"request_timeout": 120, "max_concurrent_requests": concurrency},
    }
    tracking = TrackingSettings(base_dir=folder, enabled=client == "orchestra_log").resolved()
    orch = Orchestra(config, tracking=tracking)
    scope = orch.run("fanout")
    await scope.__aenter__()

    async def call(i: int) -> Any:
        return await orch.process_request(f"question {i}", user_id="bench")

    async def finish() -> None:
        result = await orch.flush()
        if not result:
            raise RuntimeError(f"orchestra could not write everything: {result}")

    async def close() -> dict[str, Any] | None:
        await scope.__aexit__(None, None, None)
        await orch.aclose()
        if client != "orchestra_log":
            return None
        # what `orchestra traces RUN_ID` does for the deferred ones (in this process: the command
        # adds only an interpreter start)
        from orchestra.tracking import materialise_traces

        assert scope.run_id is not None
        done = await asyncio.to_thread(materialise_traces, scope.run_id, tracking)
        return {"materialised": done.written, "materialise_s": done.seconds, "unlinked": done.deferred}

    async def extra() -> dict[str, Any]:
        stats = orch.tracker.stats()
        return {"traces_written": stats.traces_written, "traces_deferred": stats.traces_deferred}

    return call, finish, close, extra


async def litellm_router(_: str, base_url: str, concurrency: int, __: Path) -> tuple:
    import litellm

    litellm.callbacks = []
    router = litellm.Router(
        model_list=[
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": base_url,
                    "api_key": "bench",
                    "timeout": 60,
                },
            }
        ],
        num_retries=2,
        default_max_parallel_requests=concurrency,
    )

    async def call(i: int) -> Any:
        return await router.acompletion(model=MODEL, messages=messages(i))

    async def finish() -> None:
        return None

    async def close() -> None:
        return None

    return call, finish, close, nothing


async def mlflow_autolog(_: str, base_url: str, __: int, folder: Path) -> tuple:
    # MLflow prices spans with LiteLLM when it can import it (installed here by the `bench` extra),
    # importing it in its export thread mid-run; a default install has no LiteLLM: block it.
    sys.modules["litellm"] = None  # type: ignore[assignment]
    import mlflow
    import openai

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.set_experiment("fanout-autolog")
    mlflow.openai.autolog()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=2, timeout=60)

    async def call(i: int) -> Any:
        return await client.chat.completions.create(model=MODEL, messages=messages(i))

    async def finish() -> None:
        await asyncio.to_thread(mlflow.flush_trace_async_logging)

    async def extra() -> dict[str, Any]:
        traces = await asyncio.to_thread(
            mlflow.search_traces,
            locations=[experiment.experiment_id],
            return_type="list",
            include_spans=False,
        )
        return {"traces_written": len(traces)}

    return call, finish, client.close, extra


def worker(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="orchestra-fanout-") as folder:
        result = asyncio.run(
            run_client(args.client, args.base_url, args.requests, args.concurrency, Path(folder))
        )
    print("WORKER " + json.dumps(result), flush=True)


# ---- the conductor: server, rounds, medians ---------------------------------------------------


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestra.testing", "openai", "--port", "0", "--latency", str(LATENCY_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return process, line.removeprefix("READY ") + "/v1"


def run_worker(
    client: str, base_url: str, n: int, concurrency: int, baseline: Path | None = None
) -> dict[str, Any]:
    script, env = __file__, None
    if client == BASELINE:
        assert baseline is not None
        script, env = str(baseline / "benchmarks" / "fanout.py"), {**os.environ, "PYTHONPATH": str(baseline)}
        client = "orchestra_log"
    command = [sys.executable, script, "--worker", client, "--base-url", base_url]
    command += ["--requests", str(n), "--concurrency", str(concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("WORKER ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("WORKER "))


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def summarise(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Medians over rounds of each round's figures."""

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    for r in runs:
        r["own_cpu_s"] = r["cpu_s"] - r["children_cpu_s"]

    written = [r.get("traces_written") for r in runs]
    return {
        "wall_s": med("wall_s"),
        "walls": [r["wall_s"] for r in runs],
        "drain_s": med("drain_s"),
        "cpu_s": med("cpu_s"),
        "children_cpu_s": med("children_cpu_s"),
        "own_cpu_s": med("own_cpu_s"),
        "p50_ms": statistics.median(statistics.median(r["overheads_ms"]) for r in runs),
        "p95_ms": statistics.median(percentile(r["overheads_ms"], 95) for r in runs),
        "traces_written": None if None in written else statistics.median(written),
        "traces_deferred": statistics.median(r.get("traces_deferred", 0) for r in runs),
        "materialise_traces_per_s": statistics.median(
            r["materialised"] / r["materialise_s"] if r.get("materialised") else 0.0 for r in runs
        ),
        "traces_per_s": statistics.median(
            (r.get("traces_written") or 0) / (r["wall_s"] + r["drain_s"]) for r in runs
        ),
        "n": n,
    }


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(
    base_url: str, clients: list[str], n: int, concurrency: int, rounds: int, baseline: Path | None = None
) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for round_index in range(rounds):
        shift = round_index % len(clients)
        for client in clients[shift:] + clients[:shift]:
            runs[client].append(run_worker(client, base_url, n, concurrency, baseline))
        print(f"  round {round_index + 1}/{rounds} done (load average {load_average()})", flush=True)
    return {c: summarise(r, n) for c, r in runs.items()}


def table(title: str, summary: dict[str, dict[str, Any]]) -> None:
    bare = summary["bare_sdk"]["wall_s"]
    print(f"\n{title}")
    print(
        f"{'client':<32} {'wall s':>7} {'x bare':>7} {'rounds x bare':>16} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'cpu s':>7} {'children':>8} {'cpu ms/req':>10} {'drain s':>8}"
    )
    bare_walls = summary["bare_sdk"]["walls"]
    for client, s in summary.items():
        per_round = [w / b for w, b in zip(s["walls"], bare_walls, strict=True)]
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        print(
            f"{LABELS[client]:<32} {s['wall_s']:>7.2f} {s['wall_s'] / bare:>7.2f} {spread:>16} "
            f"{s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f} {s['cpu_s']:>7.2f} {s['children_cpu_s']:>8.2f} "
            f"{s['cpu_s'] / s['n'] * 1000:>10.2f} {s['drain_s']:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000, help="requests at high concurrency")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--low-requests", type=int, default=200, help="requests at low concurrency")
    parser.add_argument("--low-concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny sizes, one round")
    parser.add_argument("--baseline", type=Path, help="another tree whose orchestra also runs, logging on")
    parser.add_argument("--worker", choices=CLIENTS, dest="client", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        worker(args)
        return
    if args.quick:
        args.requests, args.concurrency, args.low_requests, args.low_concurrency = 60, 20, 20, 5
        args.rounds = 1
    server, base_url = start_server()
    print(f"load average at start: {load_average()}", flush=True)
    try:
        clients = [*CLIENTS, BASELINE] if args.baseline else CLIENTS
        high = measure(base_url, clients, args.requests, args.concurrency, args.rounds, args.baseline)
        low = measure(base_url, LOW_CLIENTS, args.low_requests, args.low_concurrency, args.rounds)
    finally:
        server.terminate()
        server.wait(10)
    table(f"{args.requests} requests, {args.concurrency} in flight, {args.rounds} rounds (medians)", high)
    table(f"{args.low_requests} requests, {args.low_concurrency} in flight, {args.rounds} rounds", low)
    print(f"\nload average at end: {load_average()}")
    log, nolog, bare = high["orchestra_log"], high["orchestra_nolog"], high["bare_sdk"]
    native = high["mlflow_autolog"]
    print(f"RESULT orchestra_over_bare_sdk {log['wall_s'] / bare['wall_s']:.3f}")
    low_ratio = low["orchestra_log"]["wall_s"] / low["bare_sdk"]["wall_s"]
    print(f"RESULT orchestra_over_bare_sdk_low {low_ratio:.3f}")
    print(f"RESULT orchestra_nolog_over_bare_sdk {nolog['wall_s'] / bare['wall_s']:.3f}")
    print(f"RESULT orchestra_over_litellm {log['wall_s'] / high['litellm']['wall_s']:.3f}")
    with_drain = (log["wall_s"] + log["drain_s"]) / bare["wall_s"]
    print(f"RESULT orchestra_with_drain_over_bare_sdk {with_drain:.3f}")
    print(f"RESULT drain_s {log['drain_s']:.2f}")
    print(f"RESULT logging_cpu_ms_per_request {(log['cpu_s'] - nolog['cpu_s']) / args.requests * 1000:.2f}")
    client_cpu = (log["own_cpu_s"] - nolog["own_cpu_s"]) / args.requests * 1000
    print(f"RESULT logging_client_cpu_ms_per_request {client_cpu:.2f}")
    if args.baseline:
        before = high[BASELINE]
        baseline_cpu = (before["own_cpu_s"] - nolog["own_cpu_s"]) / args.requests * 1000
        print(f"RESULT logging_client_cpu_ms_per_request_baseline {baseline_cpu:.2f}")
        total = (before["cpu_s"] - nolog["cpu_s"]) / args.requests * 1000
        print(f"RESULT logging_cpu_ms_per_request_baseline {total:.2f}")
    low_log, low_nolog = low["orchestra_log"], low["orchestra_nolog"]
    low_cpu = (low_log["cpu_s"] - low_nolog["cpu_s"]) / args.low_requests * 1000
    print(f"RESULT logging_cpu_ms_per_request_low {low_cpu:.2f}")
    print(f"RESULT orchestra_traces_per_s {log['traces_per_s']:.0f}")
    print(f"RESULT traces_written_live {log['traces_written']:.0f}")
    print(f"RESULT traces_deferred {log['traces_deferred']:.0f}")
    print(f"RESULT traces_deferred_low {low_log['traces_deferred']:.0f}")
    print(f"RESULT materialise_traces_per_s {log['materialise_traces_per_s']:.0f}")
    print(f"RESULT mlflow_native_traces_per_s {native['traces_per_s']:.0f}")
    print(f"RESULT mlflow_native_lost {args.requests - (native['traces_written'] or 0):.0f}")
    for client, s in high.items():
        print(f"RESULT overhead_p50_ms_{client} {s['p50_ms']:.1f}")
        print(f"RESULT overhead_p95_ms_{client} {s['p95_ms']:.1f}")
    for client, s in low.items():
        print(f"RESULT overhead_p50_ms_low_{client} {s['p50_ms']:.1f}")
        print(f"RESULT overhead_p95_ms_low_{client} {s['p95_ms']:.1f}")


if __name__ == "__main__":
    main()
