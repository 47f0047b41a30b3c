"""CPU per request of orchestra's request path (logging off), beside the bare `openai` SDK, in one run.

    .venv/bin/python benchmarks/request_path.py [--requests 2000] [--concurrency 200] [--rounds 3]
                                                [--baseline DIR] [--gc-freeze]

- the server is `python -m orchestra.testing openai --latency 0.2`, in its own process;
- each client runs in its own fresh process: the bare `AsyncOpenAI` client, or `Orchestra` with
  one OpenAI-format provider, tracking off and `performance.max_concurrent_requests` = the
  concurrency (the fan-out benchmark's `orchestra_nolog` client); `--baseline DIR` adds the same
  orchestra client importing another checkout (e.g. `git archive main` extracted in /tmp);
- a client first sends `concurrency` requests (connections opened, code warm), then `requests`
  more with `concurrency` in flight; its CPU is the process's CPU time (all threads) over those;
- rounds run the clients in a rotating order; figures are medians over rounds;
- then orchestra's own path without the SDK or a server: 10x `--requests` requests one at a
  time to a provider that answers at once (`RESULT request_path_own_cpu_us`, alternating with
  `--baseline`); the steadiest before/after of the engine's per-request work.

At 200 in flight the bare SDK is CPU-bound on this machine (~2.5 ms CPU a request: httpcore
checks every pooled connection per request, pydantic builds and parses, asyncio), so every
millisecond of CPU orchestra adds shows in the wall time: the fan-out target (<= 1.10x the bare
SDK) leaves ~0.25 ms of CPU a request for all of orchestra. CPU per request is steadier than wall
time on a shared machine, which is why this benchmark reports it.

Where orchestra's CPU went (py-spy 0.4.3, `record -r 200 -f raw`, 6,000 requests at 200 in
flight, logging off; `gc.callbacks` for the collector):
- before (main at 644d8f9): ~9% of samples in orchestra's own frames (~0.4 ms a request, under
  py-spy) against ~75% in the SDK's `create`. The largest item was a seeded numpy generator per
  request (2.2% of samples), built even for the `rules` strategy that never draws; then the
  guard/retry/timeout wrappers ~1%, options (`dataclasses.replace` twice) 0.4%, the record and
  its uuid 0.4%, complexity scoring 0.3%, validation, the result and history 0.2% each.
- after: ~6% of samples; the generator is seeded only when a strategy draws, one options copy,
  no `dataclasses.asdict` per call, fewer objects per request (slots, a partial for the attempt).
- the rest of the gap is the cyclic garbage collector, not orchestra's code: with 200 requests
  in flight every object a request holds across its ~200 ms wait outlives a young collection, so
  collections come at the rate of those objects (orchestra's path holds ~50 more than the SDK's
  ~130: nine coroutine frames, the record, the decision, options, the call context), and each
  full collection walks the whole heap (orchestra, numpy and its pydantic config models add ~33k
  tracked objects to the SDK's ~98k). GC costs ~0.27 ms a request with orchestra and ~0.17 ms
  for the bare SDK (the `garbage collector` figures below); `--gc-freeze` (gc.freeze() after the
  warm-up, every client) brings both to ~0.09 ms. Orchestra does not freeze the caller's heap
  itself: that is the process owner's call (a sweep script, a server), not a library's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
LATENCY_S = 0.2
MODEL = "gpt-4o-mini"


# ---- the worker: one client in its own process -------------------------------------------------


async def bare_sdk(base_url: str, concurrency: int) -> tuple[Any, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=2, timeout=60)

    async def call(i: int) -> Any:
        messages = [{"role": "user", "content": f"question {i}"}]
        return await client.chat.completions.create(model=MODEL, messages=messages)

    return call, client.close


async def orchestra_client(base_url: str, concurrency: int) -> tuple[Any, Any]:
    import tempfile

    from orchestra import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    config = {
        "models": {"openai": {"model": MODEL, "api_key": "bench", "base_url": base_url, "timeout": 60}},
        "routing": {"rules": [{"providers": ["openai"]}]},
        "performance": {"request_timeout": 120, "max_concurrent_requests": concurrency},
    }
    folder = tempfile.mkdtemp(prefix="orchestra-request-path-")
    orch = Orchestra(config, tracking=TrackingSettings(base_dir=folder, enabled=False).resolved())

    async def call(i: int) -> Any:
        return await orch.process_request(f"question {i}", user_id="bench")

    return call, orch.aclose


async def own_path(n: int) -> dict[str, Any]:
    """Orchestra's own CPU per request: one provider that answers at once (a `FunctionConnector`),
    requests one after another, so nothing but orchestra's path runs."""
    import tempfile

    from orchestra import FunctionConnector, Orchestra
    from orchestra.tracking.settings import TrackingSettings

    config = {"models": {"local": {"type": "function"}}, "routing": {"rules": [{"providers": ["local"]}]}}
    folder = tempfile.mkdtemp(prefix="orchestra-request-path-")
    orch = Orchestra(config, tracking=TrackingSettings(base_dir=folder, enabled=False).resolved())
    orch.model_registry.register_connector("local", FunctionConnector("local", lambda request: "the answer"))
    for i in range(500):  # warm-up
        await orch.process_request(f"question {i}", user_id="bench")
    cpu = time.process_time()
    for i in range(n):
        await orch.process_request(f"question {i}", user_id="bench")
    cpu = time.process_time() - cpu
    await orch.aclose()
    return {"own_us_per_request": cpu / n * 1e6}


class GCClock:
    """CPU time spent in the cyclic garbage collector (`gc.callbacks`), and collections per generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections[info["generation"]] += 1


async def measure(client: str, base_url: str, n: int, concurrency: int, freeze: bool) -> dict[str, Any]:
    setup = bare_sdk if client == "bare_sdk" else orchestra_client
    call, close = await setup(base_url, concurrency)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm-up
    if freeze:  # what a long-running process can do once started: park the start-up heap
        gc.collect()
        gc.freeze()
    clock = GCClock()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await close()
    return {
        "cpu_ms_per_request": cpu / n * 1000,
        "gc_ms_per_request": clock.seconds / n * 1000,
        "collections": clock.collections,
        "tracked_objects": len(gc.get_objects()),
        "wall_s": wall,
    }


# ---- the conductor -----------------------------------------------------------------------------


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestra.testing", "openai", "--port", "0", "--latency", str(LATENCY_S)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = process.stdout.readline().strip() if process.stdout else ""
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return process, line.removeprefix("READY ") + "/v1"


def run_worker(
    client: str, path: Path, base_url: str, n: int, concurrency: int, freeze: bool
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", client, "--base-url", base_url]
    command += ["--requests", str(n), "--concurrency", str(concurrency)]
    command += ["--gc-freeze"] if freeze else []
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("WORKER ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("WORKER "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout, timed alternately")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="every client: gc.freeze() after its warm-up"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "own_path":
            result = asyncio.run(own_path(args.requests))
        else:
            result = asyncio.run(
                measure(args.worker, args.base_url, args.requests, args.concurrency, args.gc_freeze)
            )
        print("WORKER " + json.dumps(result), flush=True)
        return

    clients: dict[str, tuple[str, Path]] = {"bare_sdk": ("bare_sdk", ROOT), "orchestra": ("orchestra", ROOT)}
    if args.baseline is not None:
        clients["orchestra_baseline"] = ("orchestra", args.baseline.resolve())
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    server, base_url = start_server()
    try:
        for round_ in range(args.rounds):
            order = list(clients)[round_ % len(clients) :] + list(clients)[: round_ % len(clients)]
            for name in order:
                client, path = clients[name]
                runs[name].append(
                    run_worker(client, path, base_url, args.requests, args.concurrency, args.gc_freeze)
                )
            line = ", ".join(f"{name} {runs[name][-1]['cpu_ms_per_request']:.3f}" for name in clients)
            print(f"round {round_ + 1}: CPU ms/request: {line}; load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        server.terminate()
        server.wait()
    own: dict[str, list[float]] = {"orchestra": [], "orchestra_baseline": []}
    for _ in range(args.rounds):  # no server: orchestra's path alone, alternating with the baseline
        for name, (_, path) in clients.items():
            if name in own:
                own[name].append(
                    run_worker("own_path", path, "", 10 * args.requests, 1, False)["own_us_per_request"]
                )

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    print(f"{args.requests} requests, {args.concurrency} in flight, medians of {args.rounds} rounds:")
    for name in clients:
        print(
            f"  {name:<20} CPU {median(name, 'cpu_ms_per_request'):.3f} ms/request "
            f"(garbage collector {median(name, 'gc_ms_per_request'):.3f}, collections by generation "
            f"{runs[name][-1]['collections']}, {runs[name][-1]['tracked_objects']:,} objects tracked), "
            f"wall {median(name, 'wall_s'):.2f} s"
        )
    bare = median("bare_sdk", "cpu_ms_per_request")
    ours = median("orchestra", "cpu_ms_per_request")
    print(f"RESULT request_path_cpu_ms {ours:.3f}")
    print(f"RESULT bare_sdk_cpu_ms {bare:.3f}")
    print(f"RESULT request_path_gc_ms {median('orchestra', 'gc_ms_per_request'):.3f}")
    print(f"RESULT bare_sdk_gc_ms {median('bare_sdk', 'gc_ms_per_request'):.3f}")
    print(f"RESULT orchestra_added_cpu_ms {ours - bare:.3f}")
    wall_ratio = median("orchestra", "wall_s") / median("bare_sdk", "wall_s")
    print(f"RESULT request_path_over_bare_sdk_wall {wall_ratio:.3f}")
    rounds = [round(x, 1) for x in own["orchestra"]]
    print(f"orchestra's own path (an instant provider, one request at a time): {rounds} us/request")
    print(f"RESULT request_path_own_cpu_us {statistics.median(own['orchestra']):.1f}")
    if args.baseline is not None:
        print(f"  baseline: {[round(x, 1) for x in own['orchestra_baseline']]} us/request")
        print(f"RESULT request_path_own_cpu_us_baseline {statistics.median(own['orchestra_baseline']):.1f}")
        base = median("orchestra_baseline", "cpu_ms_per_request")
        print(f"RESULT request_path_cpu_ms_baseline {base:.3f}")
        print(f"RESULT orchestra_added_cpu_ms_baseline {base - bare:.3f}")


if __name__ == "__main__":
    main()
