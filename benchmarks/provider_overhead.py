"""What orchestra adds on top of the bare official SDK, against a 200 ms OpenAI-format server.

One workload, run twice in the same process: 2,000 chat completions with at most 200 in flight,
against `python -m orchestra.testing openai --latency 0.2` (its own process):

1. the bare SDK: `AsyncOpenAI` (no retries) under an `asyncio.Semaphore(200)`, `asyncio.gather`;
2. orchestra: the same server as an `openai` provider, with routing, the shared rate limiter
   (max_concurrent 200), retries and logging to an embedded SQLite store all on.

The ideal is 2,000 x 0.2 s / 200 = 2 s. Orchestra's added time per request is its processing
time minus the provider call and minus time queued for a concurrency slot. On 2 cores the
client, the server and the trace writer share the CPU, so wall times vary from run to run:
the two workloads alternate for `--rounds` rounds and the medians are compared.

    .venv/bin/python benchmarks/provider_overhead.py [--requests 2000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import openai

from orchestra import Orchestra
from orchestra.tracking.settings import TrackingSettings

LATENCY_S = 0.2


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


async def bare_sdk(base_url: str, n: int, concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=60)
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}]
            )

    await one(-1)  # warm up the connection pool
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def through_orchestra(
    base_url: str, n: int, concurrency: int, folder: Path
) -> tuple[float, list[float]]:
    config = {
        "models": {
            "openai": {
                "model": "gpt-4o-mini",
                "api_key": "bench",
                "base_url": base_url,
                "timeout": 60,
                "rate_limit": {"max_concurrent": concurrency},
            }
        },
        "routing": {"rules": [{"providers": ["openai"]}]},
        "performance": {"request_timeout": 120},
    }
    tracking = TrackingSettings(
        tracking_uri="sqlite:///mlflow.db", artifact_location="artifacts", spool_dir="spool", base_dir=folder
    ).resolved()
    orch = Orchestra(config, tracking=tracking)
    await orch.process_request("warm up", user_id="bench")
    await orch.flush()  # steady state: the store is open and the trace writer process has started
    async with orch.run("provider-overhead"):
        started = time.perf_counter()
        results = await asyncio.gather(
            *(orch.process_request(f"question {i}", user_id="bench") for i in range(n))
        )
        elapsed = time.perf_counter() - started
    overheads = []
    for result in results:
        metadata = result["metadata"]
        call = metadata["calls"][0]
        overheads.append(metadata["processing_time_ms"] - call["latency_ms"] - call["rate_limit_wait_ms"])
    await orch.aclose()
    return elapsed, overheads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server, base_url = start_server()
    bare_times, orchestra_times, overheads = [], [], []
    try:
        for _ in range(args.rounds):
            bare_times.append(asyncio.run(bare_sdk(base_url, args.requests, args.concurrency)))
            with tempfile.TemporaryDirectory(prefix="orchestra-bench-") as folder:
                elapsed, added = asyncio.run(
                    through_orchestra(base_url, args.requests, args.concurrency, Path(folder))
                )
            orchestra_times.append(elapsed)
            overheads.extend(added)
    finally:
        server.terminate()
        server.wait(10)
    bare, orchestrated = statistics.median(bare_times), statistics.median(orchestra_times)
    ideal = args.requests * LATENCY_S / args.concurrency
    p95 = statistics.quantiles(overheads, n=100)[94]
    print(f"{args.requests} requests, {args.concurrency} in flight, server latency {LATENCY_S * 1000:.0f} ms")
    print(f"  ideal                 : {ideal:.2f} s")
    print(f"  bare SDK              : {bare:.2f} s (median of {', '.join(f'{t:.2f}' for t in bare_times)})")
    rounds = ", ".join(f"{t:.2f}" for t in orchestra_times)
    print(f"  orchestra (all on)    : {orchestrated:.2f} s (median of {rounds})")
    print(f"  orchestra added/request: p50 {statistics.median(overheads):.2f} ms, p95 {p95:.2f} ms")
    print(f"RESULT orchestra_over_bare_sdk {orchestrated / bare:.3f}")
    print(f"RESULT bare_sdk_over_ideal {bare / ideal:.3f}")
    print(f"RESULT overhead_p50_ms {statistics.median(overheads):.3f}")


if __name__ == "__main__":
    main()
