"""Nothing lost, nothing duplicated, no false success: every fault of issue 10, on replay providers.

Each scenario sends a few thousand AlpacaEval prompts (replay providers, offline) through
orchestra while something breaks, then counts, in the store itself, which acknowledged requests
have their request-table row and their trace:

- poison: one request among N holds a lone surrogate (user id and prompt);
- disk_full: the store, its artifacts and the spool share a small tmpfs (root) that fills up
  mid-run and is freed again (without root: RLIMIT_FSIZE, in a child process);
- sigkill: a process is SIGKILLed mid-run (store up, and store down), then a new start recovers
  its journal; `sigkill_lost_rows_max` must stay within one unsynced batch (`max_queue`);
- server_restart: a real `mlflow server` is killed mid-run and started again `--outage-s` later;
  the running process must write everything without a restart;
- same_sweep_twice / two_sweeps_fresh_store: sweeps started together from two processes;
- unpaced: requests as fast as they come, far above the trace store's rate; RSS must level off.

`flush_false_success` counts flushes that reported success while something acknowledged was
missing from the store. `secret_occurrences` counts a registered key, put into prompts and
answers, in every file of the store, spool and log. The journal's own cost is the p50 time per
request with `durability: batch` against `none` (and `always`, and logging off), measured side
by side in this run (the target: at most +0.1 ms for batch), and the p50 of `Tracker.submit`
alone (the hot path: what a request waits for), per level.

    .venv/bin/python benchmarks/durability.py [--requests 2000] [--unpaced 20000] [--outage-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import polars as pl
import yaml

from orchestra import FunctionConnector, Orchestra, OrchestraError
from orchestra.engine.records import RequestRecord
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "data" / "alpacaeval" / "responses.parquet"
MODELS = {"gpt-4": "gpt4", "claude-2.1": "claude-2.1", "mistral-7b": "Mistral-7B-Instruct-v0.2"}
BOUND = 256
"""`max_queue`: records that may be outside the journal; a SIGKILL loses at most this many."""


def replay_config() -> dict[str, Any]:
    return {
        "datasets": {
            "alpacaeval": {
                "path": str(DATASET),
                "prompt_column": "instruction",
                "quality_column": "preference",
                "quality_offset": -1.0,
            }
        },
        "models": {
            name: {"type": "replay", "dataset": "alpacaeval", "model": model, "time_scale": 0.0}
            for name, model in MODELS.items()
        },
        "routing": {"rules": [{"providers": ["gpt-4"]}]},
    }


def tracking(folder: Path, **changes: Any) -> TrackingSettings:
    folder.mkdir(parents=True, exist_ok=True)
    values = {
        "tracking_uri": "sqlite:///mlflow.db",
        "artifact_location": "artifacts",
        "spool_dir": "spool",
        "experiment": "durability",
        "max_queue": BOUND,
        "traces": "all",  # every acknowledged record's trace is checked
        "base_dir": folder,
        **changes,
    }
    return TrackingSettings(**values).resolved()


def prompts(n: int) -> list[str]:
    """`n` AlpacaEval prompts (the 805 distinct ones, repeated as needed)."""
    distinct = pl.read_parquet(DATASET, columns=["instruction"])["instruction"].unique(maintain_order=True)
    return [distinct[i % len(distinct)] for i in range(n)]


async def drive(
    orch: Orchestra, texts: list[str], run: str, concurrency: int = 32, user_ids: dict[int, str] | None = None
) -> list[str]:
    """Send every prompt (bounded concurrency); the request ids acknowledged, failed ones too."""
    limit = asyncio.Semaphore(concurrency)
    acknowledged: list[str] = []

    async def one(i: int, text: str) -> None:
        async with limit:
            try:
                result = await orch.process_request(text, user_id=(user_ids or {}).get(i, "bench"))
                acknowledged.append(result["metadata"]["request_id"])
            except OrchestraError as err:
                if err.request_id:
                    acknowledged.append(err.request_id)
            except UnicodeError:  # bad input may fail outside the error tree: it is still logged
                acknowledged.append(orch.last_record.request_id)

    async with orch.run(run):
        await asyncio.gather(*(one(i, text) for i, text in enumerate(texts)))
    return acknowledged


@dataclass
class Store:
    """What a SQLite store (or a server's SQLite backend) holds: request ids with a row, with a
    trace, and the raw row count (duplicates included)."""

    rows: set[str] = field(default_factory=set)
    raw_rows: int = 0
    traces: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, database: Path, artifacts: Path) -> Store:
        parts = sorted(artifacts.rglob("requests/*.parquet"))
        ids = pl.concat([pl.read_parquet(p, columns=["request_id"]) for p in parts]) if parts else None
        with contextlib.closing(sqlite3.connect(database)) as connection:
            traces = {
                row[0].removeprefix("tr-") for row in connection.execute("SELECT request_id FROM trace_info")
            }
        return cls(
            rows=set() if ids is None else set(ids["request_id"]),
            raw_rows=0 if ids is None else ids.height,
            traces=traces,
        )


@dataclass
class Tally:
    results: dict[str, int] = field(default_factory=dict)
    duplicated_rows: int = 0
    flush_false_success: int = 0

    def count(self, fault: str, acknowledged: list[str], store: Store) -> None:
        self.results[f"lost_rows_{fault}"] = sum(1 for r in acknowledged if r not in store.rows)
        self.results[f"lost_traces_{fault}"] = sum(1 for r in acknowledged if r not in store.traces)
        self.duplicated_rows += store.raw_rows - len(store.rows)

    def check_flush(self, result: Any, acknowledged: list[str], store: Store) -> None:
        """A flush that said success while an acknowledged request is missing is a false success."""
        missing = any(r not in store.rows or r not in store.traces for r in acknowledged)
        if result and missing:
            self.flush_false_success += 1


def build(settings: TrackingSettings, config: dict[str, Any] | None = None) -> Orchestra:
    return Orchestra(config or replay_config(), tracking=settings)


# ---- the journal's overhead -----------------------------------------------------------------


async def _timed(orch: Orchestra, texts: list[str]) -> list[float]:
    times = []
    async with orch.run("overhead"):
        for text in texts:
            started = time.perf_counter()
            await orch.process_request(text, user_id="bench")
            times.append((time.perf_counter() - started) * 1000)
    return times


def overhead(folder: Path, n: int, rounds: int = 2) -> dict[str, float]:
    """p50 ms per sequential request, per durability level, alternating levels round by round."""
    texts = prompts(n)
    samples: dict[str, list[float]] = {"off": [], "none": [], "batch": [], "always": []}
    for round_ in range(rounds):
        for level in samples:
            settings = tracking(folder / f"overhead-{level}-{round_}", enabled=level != "off")
            if level != "off":
                settings = settings.model_copy(update={"durability": level})
            orch = build(settings)
            asyncio.run(_timed(orch, texts[:50]))  # warm-up: imports, store, trace process
            samples[level].append(statistics.median(asyncio.run(_timed(orch, texts))))
            orch.close()
    return {level: statistics.median(values) for level, values in samples.items()}


def submit_cost(folder: Path, n: int = 20_000) -> dict[str, float]:
    """Microseconds `Tracker.submit` takes before it returns (the hot path), per durability
    level, with the store down so that only the journal works (nothing drains meanwhile)."""
    record = RequestRecord(
        request_id="0" * 32,
        run_key="submit",
        start_ns=time.time_ns(),
        end_ns=time.time_ns(),
        user_id="bench",
        session_id=None,
        task_type="general",
        prompt="What is the capital of France?",
        response="Paris",
    )
    costs = {}
    for level in ("none", "batch", "always"):
        settings = tracking(folder / f"submit-{level}", durability=level, trace_writer="thread")
        settings.sqlite_path.mkdir(parents=True)  # the store is down: records stay in the journal
        tracker = Tracker(settings)
        run = tracker.begin_run("submit")

        async def submit_all(tracker: Tracker = tracker, run: Any = run) -> list[float]:
            times = []
            for _ in range(n):
                started = time.perf_counter_ns()
                await tracker.submit(record, run)
                times.append((time.perf_counter_ns() - started) / 1000)
            return times

        costs[level] = statistics.median(asyncio.run(submit_all()))
        tracker.close()
    return costs


# ---- faults ---------------------------------------------------------------------------------


def poison(folder: Path, n: int, tally: Tally) -> None:
    settings = tracking(folder / "poison")
    orch = build(settings)
    texts = prompts(n)
    middle = n // 2
    texts[middle] = texts[middle] + " caf\udce9"
    # one at a time, so that a request failing outside the error tree is known by `last_record`
    acknowledged = asyncio.run(drive(orch, texts, "poison", concurrency=1, user_ids={middle: "u\udce9"}))
    result = orch.flush_sync()
    store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
    tally.check_flush(result, acknowledged, store)
    orch.close()
    tally.count("poison", acknowledged, Store.read(settings.sqlite_path, Path(settings.artifact_location)))


def _mount_tmpfs(mount: Path, size_mb: int) -> bool:
    mount.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)], capture_output=True
    )
    return done.returncode == 0


def _fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


async def _disk_full_run(
    orch: Orchestra, texts: list[str], full: Any, free: Any
) -> tuple[list[str], list[Any]]:
    """Requests flow; a third of the way in the disk fills; it is freed after the journal has
    failed for a while (requests meanwhile wait: back-pressure)."""
    flushes = []
    first = await drive(orch, texts[: len(texts) // 3], "disk-full-before")
    full()
    sending = asyncio.ensure_future(drive(orch, texts[len(texts) // 3 :], "disk-full"))
    for _ in range(3000):
        if orch.tracker.stats().journal_failures > 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # the disk stays full a while: requests wait, the store fails
    flushes.append(await orch.flush(timeout=2.0))
    free()
    rest = await sending
    flushes.append(await orch.flush())
    return first + rest, flushes


def disk_full(folder: Path, n: int, tally: Tally) -> str:
    mount = folder / "disk"
    texts = prompts(n)
    if _mount_tmpfs(mount, 64):
        try:
            settings = tracking(mount, trace_writer="thread")
            orch = build(settings)
            acknowledged, flushes = asyncio.run(
                _disk_full_run(
                    orch, texts, lambda: _fill(mount / "filler"), lambda: (mount / "filler").unlink()
                )
            )
            store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
            for result in flushes:
                tally.check_flush(result, acknowledged, store)
            orch.close()
            tally.count(
                "disk_full", acknowledged, Store.read(settings.sqlite_path, Path(settings.artifact_location))
            )
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        return "tmpfs"
    settings = tracking(mount, trace_writer="thread")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    orch = build(settings)

    def full() -> None:
        journal = orch.tracker._writer.journal.path
        biggest = max(p.stat().st_size for p in journal.parent.glob(journal.name + "*"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 65536, hard))

    try:
        acknowledged, flushes = asyncio.run(
            _disk_full_run(orch, texts, full, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard)))
        )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
    for result in flushes:
        tally.check_flush(result, acknowledged, store)
    orch.close()
    tally.count("disk_full", acknowledged, Store.read(settings.sqlite_path, Path(settings.artifact_location)))
    return "RLIMIT_FSIZE"


SIGKILL_CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from orchestra import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    settings = TrackingSettings.model_validate_json(sys.argv[1])
    with open(sys.argv[2]) as handle:
        config, texts = json.load(handle)
    orch = Orchestra(config, tracking=settings)

    async def main():
        limit = asyncio.Semaphore(32)

        async def one(text):
            async with limit:
                result = await orch.process_request(text, user_id="bench")
                print(result["metadata"]["request_id"], flush=True)

        async with orch.run("sigkill-victim"):
            await asyncio.gather(*(one(text) for text in texts))

    asyncio.run(main())
""")


def sigkill(folder: Path, n: int, kill_after: int, tally: Tally, *, store_down: bool) -> int:
    """A process killed after `kill_after` acknowledgements; a new start recovers its journal.
    Returns how many acknowledged rows were lost (at most one unsynced batch is allowed)."""
    settings = tracking(folder, trace_writer="thread")
    database = settings.sqlite_path
    if store_down:
        database.mkdir(parents=True)  # a folder where the database should be: the store is down
    work = folder / "work.json"
    work.write_text(json.dumps([replay_config(), prompts(n)]))
    process = subprocess.Popen(
        [sys.executable, "-c", SIGKILL_CHILD, settings.model_dump_json(), str(work)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acknowledged = []
    assert process.stdout is not None
    for line in process.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == kill_after:
            process.kill()
            break
    process.wait()
    if store_down:
        database.rmdir()  # the store is back
    recovery = Tracker(settings)
    if not recovery.flush():
        raise RuntimeError("the recovery could not write the dead process's journal")
    recovery.close()
    # No flush here can vouch for records that died unsynced with their process: they are
    # counted against the bound instead of as false successes.
    store = Store.read(database, Path(settings.artifact_location))
    # Rows lost are bounded (reported apart); a record whose row survived must have its trace.
    fault = "sigkill_store_down" if store_down else "sigkill"
    traces_lost = sum(1 for r in acknowledged if r in store.rows and r not in store.traces)
    tally.results[f"lost_traces_{fault}"] = tally.results.get(f"lost_traces_{fault}", 0) + traces_lost
    tally.duplicated_rows += store.raw_rows - len(store.rows)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        running = connection.execute("SELECT COUNT(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]
    tally.results["runs_left_running_after_sigkill"] = (
        tally.results.get("runs_left_running_after_sigkill", 0) + running
    )
    return sum(1 for r in acknowledged if r not in store.rows)


class Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.database = folder / "server.db"
        self.artifacts = folder / "server-artifacts"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        settings = TrackingSettings(
            tracking_uri=f"sqlite:///{self.database}", artifact_location=str(self.artifacts)
        )
        environment, argv = settings.ui_argv(self.port)
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(1200):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                return
            time.sleep(0.1)
        raise RuntimeError("mlflow server did not start")

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


async def _server_run(
    orch: Orchestra, server: Server, texts: list[str], outage_s: float
) -> tuple[list[str], list[Any]]:
    flushes = []
    first = await drive(orch, texts[: len(texts) // 3], "server-before")
    flushes.append(await orch.flush())
    server.kill()
    during = await drive(orch, texts[len(texts) // 3 : 2 * len(texts) // 3], "server-down")
    flushes.append(await orch.flush(timeout=5.0))
    await asyncio.sleep(outage_s)
    await asyncio.to_thread(server.start)
    last = await drive(orch, texts[2 * len(texts) // 3 :], "server-back")
    flushes.append(await orch.flush())
    return first + during + last, flushes


def server_restart(folder: Path, n: int, outage_s: float, tally: Tally) -> None:
    server = Server(folder)
    server.start()
    try:
        settings = tracking(folder / "client", tracking_uri=server.uri, artifact_location=None)
        orch = build(settings)
        acknowledged, flushes = asyncio.run(_server_run(orch, server, prompts(n), outage_s))
        store = Store.read(server.database, server.artifacts)
        for result in flushes:
            tally.check_flush(result, acknowledged, store)
        orch.close()
        tally.count("server_restart", acknowledged, Store.read(server.database, server.artifacts))
    finally:
        server.kill()


SWEEP_CHILD = "import sys\nfrom orchestra.sweeps import run_sweep\nrun_sweep(sys.argv[1], progress=False)\n"


def _sweep_files(folder: Path, names: list[str], limit: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(replay_config()))
    (folder / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///store/mlflow.db\nartifact_location: artifacts\n"
        "spool_dir: spool\nexperiment: sweeps\n"
    )
    paths = []
    for name in names:
        sweep = {
            "name": name,
            "config": "config.yaml",
            "prompts": {"dataset": "alpacaeval", "limit": limit},
            "concurrency": 16,
            "arms": [{"name": model, "routing.rules": [{"providers": [model]}]} for model in MODELS],
        }
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(sweep))
        paths.append(path)
    return paths


def _run_together(paths: list[Path]) -> list[int]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SWEEP_CHILD, str(p)],
            cwd=p.parent,
            env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in paths
    ]
    return [process.wait() for process in processes]


def sweeps(folder: Path, limit: int, tally: Tally) -> dict[str, int]:
    """The same sweep from two processes at once; then two sweeps on a store that does not exist yet."""
    same = _sweep_files(folder / "same", ["twice"], limit)
    codes = _run_together([same[0], same[0]])
    settings = tracking(folder / "same", tracking_uri="sqlite:///store/mlflow.db", experiment="sweeps")
    store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
    tally.duplicated_rows += store.raw_rows - len(store.rows)
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as connection:
        arm_runs = connection.execute(
            "SELECT COUNT(*) FROM tags WHERE key = 'orchestra.kind' AND value = 'sweep-arm'"
        ).fetchone()[0]
    tally.results["lost_rows_same_sweep_twice"] = len(MODELS) * limit - len(store.rows)
    fresh = _sweep_files(folder / "fresh", ["first", "second"], limit)
    fresh_codes = _run_together(fresh)
    settings = tracking(folder / "fresh", tracking_uri="sqlite:///store/mlflow.db", experiment="sweeps")
    store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
    tally.results["lost_rows_two_sweeps_fresh_store"] = 2 * len(MODELS) * limit - len(store.rows)
    tally.duplicated_rows += store.raw_rows - len(store.rows)
    return {
        "same_sweep_arm_runs": arm_runs,
        "same_sweep_arms": len(MODELS),
        "same_sweep_failed_processes": sum(code != 0 for code in codes),
        "fresh_store_sweeps_started": sum(code == 0 for code in fresh_codes),
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _unpaced_run(orch: Orchestra, n: int) -> tuple[list[str], list[tuple[int, float, int]]]:
    texts = prompts(n)
    samples = []
    acknowledged: list[str] = []
    step = n // 4
    for start in range(0, n, step):
        acknowledged += await drive(orch, texts[start : start + step], f"unpaced-{start}", concurrency=100)
        samples.append((start + step, _rss_mb(), orch.tracker.queued()))
    return acknowledged, samples


def unpaced(folder: Path, n: int, tally: Tally) -> list[tuple[int, float, int]]:
    """Run in a fresh process, so that its RSS is its own (not this one's, after every scenario)."""
    settings = tracking(folder / "unpaced")
    report = folder / "unpaced.json"
    subprocess.run([sys.executable, __file__, "--unpaced-child", str(n), str(report)], check=True)
    acknowledged, samples, flushed = json.loads(report.read_text())
    store = Store.read(settings.sqlite_path, Path(settings.artifact_location))
    tally.check_flush(flushed, acknowledged, store)
    tally.count("unpaced", acknowledged, store)
    return [tuple(sample) for sample in samples]


def unpaced_child(n: int, report: Path) -> None:
    orch = build(tracking(report.parent / "unpaced"))
    acknowledged, samples = asyncio.run(_unpaced_run(orch, n))
    flushed = bool(orch.flush_sync())
    orch.close()
    report.write_text(json.dumps([acknowledged, samples, flushed]))


def secrets(folder: Path, n: int) -> int:
    """A registered key put into prompts and answers: its occurrences in every file written."""
    key = "sk-bench-" + os.urandom(12).hex()
    os.environ["DURABILITY_BENCH_API_KEY"] = key  # registered like any *_API_KEY variable
    log = folder / "secrets" / "orchestra.log"
    log.parent.mkdir(parents=True)
    handler = logging.FileHandler(log)
    logging.getLogger("orchestra").addHandler(handler)
    settings = tracking(folder / "secrets")
    config = {"models": {"echo": {"type": "function"}}, "routing": {"rules": [{"providers": ["echo"]}]}}
    orch = Orchestra(config, tracking=settings)
    orch.model_registry.register_connector(
        "echo", FunctionConnector("echo", lambda r: f"you said {r.prompt}")
    )
    asyncio.run(drive(orch, [f"my key is {key}, question {i}" for i in range(n)], "secrets"))
    orch.close()
    logging.getLogger("orchestra").removeHandler(handler)
    handler.close()
    needle = key.encode()
    return sum(path.read_bytes().count(needle) for path in (folder / "secrets").rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--unpaced", type=int, default=20000)
    parser.add_argument("--outage-s", type=float, default=10.0)
    parser.add_argument("--overhead-requests", type=int, default=1000)
    parser.add_argument("--unpaced-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)  # the faults are on purpose
    if args.unpaced_child:
        unpaced_child(int(args.unpaced_child[0]), Path(args.unpaced_child[1]))
        return
    tally = Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orchestra-durability-") as scratch:
        folder = Path(scratch)
        submits = submit_cost(folder / "submit")
        print(f"submit us p50: {json.dumps({k: round(v, 2) for k, v in submits.items()})}", flush=True)
        levels = overhead(folder / "overhead", args.overhead_requests)
        print(f"overhead p50 ms: {json.dumps({k: round(v, 3) for k, v in levels.items()})}", flush=True)
        poison(folder, args.requests, tally)
        print(f"poison done at {time.perf_counter() - started:.0f} s", flush=True)
        method = disk_full(folder, args.requests, tally)
        print(f"disk_full done ({method}) at {time.perf_counter() - started:.0f} s", flush=True)
        kills = [
            sigkill(folder / f"sigkill-{i}", args.requests, kill_after, tally, store_down=False)
            for i, kill_after in enumerate((args.requests // 4, args.requests // 2, 3 * args.requests // 4))
        ]
        kills.append(
            sigkill(folder / "sigkill-down", args.requests, args.requests // 2, tally, store_down=True)
        )
        print(f"sigkill lost rows per kill: {kills} at {time.perf_counter() - started:.0f} s", flush=True)
        server_restart(folder / "server", args.requests, args.outage_s, tally)
        print(f"server_restart done at {time.perf_counter() - started:.0f} s", flush=True)
        sweep_counts = sweeps(folder / "sweeps", min(100, args.requests // 10), tally)
        print(f"sweeps: {sweep_counts} at {time.perf_counter() - started:.0f} s", flush=True)
        samples = unpaced(folder, args.unpaced, tally)
        for done, rss, queued in samples:
            print(
                f"unpaced: {done} requests sent, RSS {rss:.0f} MB, "
                f"{queued} not in the store yet (in the journal)"
            )
        print(f"unpaced done at {time.perf_counter() - started:.0f} s", flush=True)
        occurrences = secrets(folder, 200)
    for name, value in sorted(tally.results.items()):
        print(f"RESULT {name} {value}")
    print(f"RESULT duplicated_rows {tally.duplicated_rows}")
    print(f"RESULT flush_false_success {tally.flush_false_success}")
    print(f"RESULT sigkill_lost_rows_max {max(kills)}")
    print(f"RESULT sigkill_bound {BOUND}")
    print(
        f"RESULT same_sweep_arm_runs {sweep_counts['same_sweep_arm_runs']} "
        f"(arms: {sweep_counts['same_sweep_arms']})"
    )
    print(f"RESULT fresh_store_sweeps_started {sweep_counts['fresh_store_sweeps_started']} (of 2)")
    for done, rss, _ in samples:
        print(f"RESULT unpaced_rss_mb_at_{done} {rss:.0f}")
    middle = samples[len(samples) // 2 - 1]
    print(
        f"RESULT unpaced_rss_growth_mb {samples[-1][1] - middle[1]:.0f} "
        f"(from {middle[0]} to {samples[-1][0]} requests; the issue measured 342 -> 534 MB at 20k)"
    )
    print(f"RESULT secret_occurrences {occurrences}")
    for level in ("off", "none", "batch", "always"):
        print(f"RESULT p50_ms_{level} {levels[level]:.3f}")
    print(f"RESULT journal_overhead_p50_ms {levels['batch'] - levels['none']:+.3f} (target <= +0.1)")
    for level, micros in submits.items():
        print(f"RESULT submit_us_p50_{level} {micros:.2f}")
    print(f"RESULT seconds {time.perf_counter() - started:.0f}")


if __name__ == "__main__":
    main()
