"""Team scale: the offline sweep on the local backend and on Ray (1 and 2 workers), and four
processes logging to an `mlflow server` on PostgreSQL, with a 30 s outage mid-run.

1. `experiments/alpacaeval_routing.yaml` (6 arms, replay providers, offline) on the first
   `--prompts` prompts, each backend into a fresh SQLite store: wall time and requests/s. Ray runs
   on one local instance of 2 CPUs started beforehand (its start-up is reported apart); each
   backend runs a warm-up sweep first, so that the figures compare the backends, not imports.
2. A PostgreSQL cluster (scripts/test-postgres.sh) and `mlflow server` on it (one worker,
   artifacts proxied), started the way a team starts them. Four processes each run the same sweep
   (renamed, so that each runs every arm) against it: requests/s until all four have finished.
3. Four processes each log `--requests` requests, paced over about a minute, to the same server,
   which is killed `--outage-at-s` into the run and started again `--outage-s` later. They never
   restart; each flushes at the end. `team_store_lost` counts the requests missing a row or a
   trace in PostgreSQL itself, over phases 2 and 3.

    .venv/bin/python benchmarks/sweep_scale.py [--prompts 200] [--requests 500] [--outage-s 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import yaml

from orchestra.sweeps import run_sweep
from orchestra.sweeps.ray_backend import RayOptions
from orchestra.tracking.reader import load_requests
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.team import team_server_command

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "experiments" / "alpacaeval_routing.yaml"
ARMS = 6


def fresh_store(folder: Path) -> TrackingSettings:
    folder.mkdir(parents=True)
    return TrackingSettings(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifact_location=str(folder / "artifacts"),
        spool_dir=str(folder / "spool"),
        experiment="scale",
        traces="all",  # the sweeps' time includes writing every trace, as before deferred traces
    )


def timed_sweep(folder: Path, prompts: int, backend: str | RayOptions) -> float:
    started = time.perf_counter()
    summary = run_sweep(SWEEP, limit=prompts, tracking=fresh_store(folder), progress=False, backend=backend)
    elapsed = time.perf_counter() - started
    assert summary.table["requests"].sum() == ARMS * prompts, summary.table
    return elapsed


def backends(scratch: Path, prompts: int) -> dict[str, float]:
    import ray

    total = ARMS * prompts
    warm = timed_sweep(scratch / "local-warm-up", min(prompts, 20), "local")
    print(f"local warm-up sweep ({ARMS * min(prompts, 20)} requests, imports): {warm:.1f} s")
    times = {"local": timed_sweep(scratch / "local", prompts, "local")}
    started = time.perf_counter()
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    print(f"ray start-up: {time.perf_counter() - started:.1f} s")
    try:
        cold = timed_sweep(scratch / "warm-up", min(prompts, 20), RayOptions(workers=2))
        print(f"ray warm-up sweep ({ARMS * min(prompts, 20)} requests, workers importing): {cold:.1f} s")
        for workers in (1, 2):
            times[f"ray_{workers}"] = timed_sweep(
                scratch / f"ray-{workers}", prompts, RayOptions(workers=workers)
            )
    finally:
        ray.shutdown()
    for name, elapsed in times.items():
        print(f"{name:>8}: {elapsed:6.1f} s  {total / elapsed:7.1f} requests/s  ({total} requests)")
    return times


# ---- the team store ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Team:
    """PostgreSQL (a cluster of this run) and `mlflow server` on it, stopped and started at will."""

    def __init__(self, scratch: Path) -> None:
        self.pg_folder = Path(tempfile.mkdtemp(prefix="orchestra-pg-", dir="/tmp"))
        self.pg_port = free_port()
        self.password = f"pw{secrets.token_hex(12)}"
        environment = {**os.environ, "ORCHESTRA_TEST_PG_PASSWORD": self.password}
        script = ROOT / "scripts" / "test-postgres.sh"
        subprocess.run(
            [str(script), "start", str(self.pg_folder), str(self.pg_port)], env=environment, check=True
        )
        self._create_database("scale")
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = scratch / "server-artifacts"
        self.log = scratch / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def store_uri(self, database: str) -> str:
        return f"postgresql://orchestra:{self.password}@127.0.0.1:{self.pg_port}/{database}"

    def _create_database(self, name: str) -> None:
        import psycopg

        with contextlib.closing(psycopg.connect(self.store_uri("postgres"), autocommit=True)) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def count(self, sql: str, *parameters: object) -> int:
        import psycopg

        with contextlib.closing(psycopg.connect(self.store_uri("scale"))) as connection:
            return connection.execute(sql, parameters).fetchone()[0]

    def start(self) -> float:
        started = time.perf_counter()
        environment, argv = team_server_command(self.store_uri("scale"), self.artifacts, port=self.port)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv, env={**os.environ, **environment}, stdout=log, stderr=log, start_new_session=True
            )
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return time.perf_counter() - started
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit(f"mlflow server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def close(self) -> None:
        self.stop()
        subprocess.run([str(ROOT / "scripts" / "test-postgres.sh"), "stop", str(self.pg_folder)], check=False)
        shutil.rmtree(self.pg_folder, ignore_errors=True)


SWEEPER = textwrap.dedent("""
    import sys
    from orchestra.sweeps import run_sweep
    from orchestra.tracking.settings import load_tracking_settings
    summary = run_sweep(sys.argv[1], limit=int(sys.argv[2]), tracking=load_tracking_settings(sys.argv[3]),
                        progress=False)
    print("REQUESTS", int(summary.table["requests"].sum()))
""")

WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from orchestra import Orchestra
    from orchestra.sweeps.arms import answer_all
    from orchestra.sweeps.prompts import load_prompts
    from orchestra.sweeps.spec import PromptSource
    from orchestra.tracking.settings import load_tracking_settings

    config, tracking, name = sys.argv[1:4]
    count, pace = int(sys.argv[4]), float(sys.argv[5])
    orch = Orchestra(config, tracking=load_tracking_settings(tracking))
    prompts = load_prompts(PromptSource(dataset="alpacaeval"), None, orch.datasets, "general")
    prompts = (prompts * (count // len(prompts) + 1))[:count]  # 403 prompts: round again if needed

    async def main():
        async with orch.run(name):
            tasks = []
            for prompt in prompts:  # paced: the run lasts about count * pace seconds
                tasks.append(asyncio.create_task(answer_all(orch, [prompt], 1)))
                await asyncio.sleep(pace)
            await asyncio.gather(*tasks)

    asyncio.run(main())
    deadline = time.monotonic() + 600
    while not (flushed := orch.flush_sync()) and time.monotonic() < deadline:
        time.sleep(1.0)  # the store may be down: everything waits in the journal meanwhile
    print("REQUESTS", len(prompts), "FLUSHED", bool(flushed))
    orch.close()
""")


def tracking_file(folder: Path, uri: str) -> Path:
    path = folder / "mlflow.yaml"
    path.write_text(yaml.safe_dump({"tracking_uri": uri, "artifact_location": None, "experiment": "scale",
                                    "spool_dir": str(folder / "spool"), "traces": "all"}))  # fmt: skip
    return path


def start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"a logging process failed: {err[-3000:]}")
    return out


def team_store(
    scratch: Path, team: Team, prompts: int, requests: int, outage_at: float, outage: float
) -> None:
    folder = scratch / "team"
    folder.mkdir()
    tracking = tracking_file(folder, team.uri)
    # Phase 2: the same sweep from four processes at once.
    sweeps = []
    for index in range(4):
        copy = yaml.safe_load(SWEEP.read_text())
        copy["name"] = f"alpacaeval-routing-p{index}"
        copy["config"] = str(ROOT / "config.yaml")
        path = folder / f"sweep-{index}.yaml"
        path.write_text(yaml.safe_dump(copy))
        sweeps.append(path)
    started = time.perf_counter()
    processes = [start(SWEEPER, str(path), str(prompts), str(tracking)) for path in sweeps]
    answered = sum(int(finish(p).split()[-1]) for p in processes)
    elapsed = time.perf_counter() - started
    rate = answered / elapsed
    print(f"team store, 4 sweep processes: {answered} requests in {elapsed:.1f} s, {rate:.1f} requests/s")
    # Phase 3: four processes logging through an outage of the server.
    pace = 60.0 / requests
    started = time.perf_counter()
    writers = [
        start(WRITER, str(ROOT / "config.yaml"), str(tracking), f"writer-{i}", str(requests), str(pace))
        for i in range(4)
    ]
    time.sleep(outage_at)
    team.stop()
    print(f"server killed {time.perf_counter() - started:.1f} s into the run; down for {outage:.0f} s")
    time.sleep(outage)
    print(f"server back after {team.start():.1f} s of start-up")
    reports = [finish(w).strip().splitlines()[-1].split() for w in writers]  # REQUESTS n FLUSHED b
    written = sum(int(report[1]) for report in reports)
    flushed = [report[3] for report in reports]
    print(
        f"four writers done in {time.perf_counter() - started:.1f} s: {written} requests, flushed {flushed}"
    )
    settings = TrackingSettings(tracking_uri=team.uri, artifact_location=None, experiment="scale")
    frame = load_requests(tracking=settings)
    expected = answered + written
    store = MlflowStore(settings)
    traces = team.count("SELECT count(*) FROM trace_info WHERE experiment_id = %s", int(store.experiment_id))
    rows = frame["request_id"].n_unique()
    lost = max(expected - rows, 0) + max(expected - traces, 0)
    print(f"expected {expected} requests; {rows} distinct rows ({frame.height} read), {traces} traces")
    print(f"RESULT team_store_requests_per_s {rate:.1f}")
    print(f"RESULT team_store_lost {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200, help="prompts per arm (6 arms)")
    parser.add_argument("--requests", type=int, default=500, help="requests per logging process (phase 3)")
    parser.add_argument("--outage-at-s", type=float, default=10.0)
    parser.add_argument("--outage-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestra-scale-") as scratch_name:
        scratch = Path(scratch_name)
        times = backends(scratch, args.prompts)
        print(f"RESULT ray_1_worker_over_local {times['local'] / times['ray_1']:.2f}")
        print(f"RESULT ray_2_workers_over_local {times['local'] / times['ray_2']:.2f}")
        team = Team(scratch)
        try:
            print(f"mlflow server on PostgreSQL up in {team.start():.1f} s")
            team_store(scratch, team, args.prompts, args.requests, args.outage_at_s, args.outage_s)
        finally:
            team.close()


if __name__ == "__main__":
    main()
