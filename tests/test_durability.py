"""Nothing lost under faults, for real: a poison record among many, a record the store refuses, a
store that is down then back, a full disk (tmpfs, or RLIMIT_FSIZE), SIGKILL of processes that
share one store, and what `flush` and `close` say about all of it. Real SQLite MLflow stores,
real subprocesses; outcomes are counted, never timed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from orchestra import FunctionConnector, Orchestra, OrchestraError, TrackingStoreError
from orchestra.sweeps.runner import settle
from orchestra.tracking.reader import load_requests, read_request_table
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tracker import Tracker
from tests.conftest import ROOT, scripted_config

CONFIG = {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["a"]}]}}


@pytest.fixture
def tracking(tracking: TrackingSettings) -> TrackingSettings:
    """The shared store settings with `traces: all`: these tests are about every record, its
    trace included, reaching the store (the trace budget has its own tests, test_trace_budget.py)."""
    return tracking.model_copy(update={"traces": "all"})


def build(tracking: TrackingSettings) -> Orchestra:
    orch = Orchestra(scripted_config("a"), tracking=tracking)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: f"answer to {r.prompt}"))
    return orch


def traces_of(database: Path, run_id: str) -> int:
    """Traces linked to the run, counted in the store itself."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        query = "SELECT COUNT(DISTINCT source_id) FROM entity_associations WHERE destination_id = ?"
        return connection.execute(query, (run_id,)).fetchone()[0]


def stored_rows(settings: TrackingSettings) -> pl.DataFrame:
    """Every row in every part of every run, duplicates included."""
    parts = sorted(Path(settings.artifact_location).rglob("requests/*.parquet"))
    return pl.concat([pl.read_parquet(p, columns=["request_id", "run_id"]) for p in parts]) if parts else None


async def eventually(condition: Callable[[], bool], what: str, limit_s: float = 120.0) -> None:
    """Wait for an event the test caused (a deadline only against hanging forever)."""
    for _ in range(int(limit_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never happened: {what}")


def down_settings(tmp_path: Path, **changes) -> TrackingSettings:
    """A SQLite store whose database path is a folder: every open fails, like a store that is down."""
    database = tmp_path / "store" / "mlflow.db"
    database.mkdir(parents=True)
    return TrackingSettings(
        tracking_uri=f"sqlite:///{database}",
        artifact_location=str(tmp_path / "artifacts"),
        spool_dir=str(tmp_path / "spool"),
        experiment="tests",
        trace_writer="thread",
        traces="all",
        base_dir=tmp_path,
        **changes,
    )


# ---- poison ---------------------------------------------------------------------------------


async def test_a_lone_surrogate_among_300_requests_loses_nothing(tracking):
    orch = build(tracking)
    async with orch.run("poison") as scope:
        for i in range(300):
            poisoned = i == 150
            with contextlib.suppress(OrchestraError, UnicodeError):  # refused or not, it is logged
                await orch.process_request(
                    f"q{i} caf\udce9" if poisoned else f"q{i}", user_id="u\udce9" if poisoned else "u1"
                )
    result = await orch.flush()
    assert result and result.written == 300 and result.dead_lettered == 0
    table = read_request_table(tracking, scope.run_id)
    assert table.height == 300
    flagged = table.filter(pl.col("user_id") == "u\ufffd")
    assert flagged.height == 1 and "orchestra.invalid_text" in flagged["tags_json"][0]
    assert traces_of(tracking.sqlite_path, scope.run_id) == 300
    assert orch.close()


async def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_written(tracking, caplog):
    orch = build(tracking)
    async with orch.run("refusal") as scope:
        await orch.process_request("warm-up", user_id="u1")
        assert await orch.flush()
        with contextlib.closing(sqlite3.connect(tracking.sqlite_path)) as connection:
            connection.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON spans WHEN NEW.content LIKE '%poison-pill%' "
                "BEGIN SELECT RAISE(ABORT, 'this store refuses poison pills'); END"
            )
            connection.commit()
        for i in range(40):
            await orch.process_request("a poison-pill" if i == 17 else f"q{i}", user_id="u1")
    with caplog.at_level(logging.ERROR, logger="orchestra.tracking"):
        result = await orch.flush()
    assert not result and result.dead_lettered == 1 and result.pending == 0
    assert orch.tracker.stats().dead_lettered == 1
    assert read_request_table(tracking, scope.run_id).height == 41  # rows are not refused
    assert traces_of(tracking.sqlite_path, scope.run_id) == 40  # every other trace is written
    [letter] = [json.loads(line) for path in Path(result.dead_letter).iterdir() for line in path.open()]
    assert letter["sink"] == "traces" and "IntegrityError" in letter["reason"]
    assert letter["entry"]["prompt"] == "a poison-pill"
    assert any("refused" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert not orch.close()  # still not everything is in the store: never reported as success


# ---- honest flush, store outages ------------------------------------------------------------


async def test_a_store_down_then_back_is_written_by_the_running_process(tmp_path, empty_store_template):
    settings = down_settings(tmp_path, max_queue=64)
    orch = build(settings)
    async with orch.run("outage") as scope:
        for i in range(300):
            await orch.process_request(f"q{i}", user_id="u1")
    down = await orch.flush()
    assert not down and down.spooled == down.pending >= 300 + 2  # records, the run's create and end
    status = orch.tracker.status()
    assert not status.healthy and isinstance(status.error, TrackingStoreError)
    assert orch.tracker.stats().max_in_memory <= 64  # the backlog waits on disk, not in memory

    database = Path(settings.tracking_uri.removeprefix("sqlite:///"))
    database.rmdir()
    shutil.copy(empty_store_template, database)  # the store is back
    back = await orch.flush()
    assert back and back.written == 300 and orch.tracker.status().healthy
    run_id = MlflowStore(settings).find_run(scope.handle.run_key)
    assert read_request_table(settings, run_id).height == 300
    assert traces_of(database, run_id) == 300
    assert orch.close()


async def test_a_flush_that_cannot_finish_is_never_a_success(tracking):
    orch = build(tracking)
    async with orch.run("locked") as scope:
        for i in range(20):
            await orch.process_request(f"q{i}", user_id="u1")
    connection = sqlite3.connect(tracking.sqlite_path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")  # nobody else can read or write the store now
    try:
        locked = await orch.flush(timeout=1.0)
        assert not locked and (locked.timed_out or locked.pending > 0)
    finally:
        connection.execute("COMMIT")
        connection.close()
    assert await orch.flush()
    assert read_request_table(tracking, scope.run_id).height == 20
    orch.close()


async def test_a_sweep_summary_waits_out_other_writers_holding_the_store(tracking):
    """`settle` (before a sweep reads its summary back) keeps flushing while the only failure is
    another writer's lock; the lock is released once a pass has failed on it (counted, not timed)."""
    orch = build(tracking)
    async with orch.run("locked") as scope:
        for i in range(20):
            await orch.process_request(f"q{i}", user_id="u1")
    connection = sqlite3.connect(tracking.sqlite_path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN EXCLUSIVE")
    failures_before = orch.tracker.stats().failures
    for i in range(5):  # owed to the store while it is locked, whatever was written before
        await orch.process_request(f"late {i}", user_id="u1")
    settled_or_failed = threading.Event()

    def release_after_a_failed_pass() -> None:
        while orch.tracker.stats().failures == failures_before and not settled_or_failed.is_set():
            settled_or_failed.wait(0.01)
        connection.execute("COMMIT")

    releaser = threading.Thread(target=release_after_a_failed_pass, daemon=True)
    releaser.start()
    try:
        settled = await asyncio.to_thread(settle, orch.tracker)
    finally:
        settled_or_failed.set()
        releaser.join()
        connection.close()
    assert settled and settled.pending == 0
    assert orch.tracker.stats().failures > failures_before  # it did meet the lock
    assert MlflowStore(tracking).client.get_run(scope.run_id).info.status == "FINISHED"
    assert read_request_table(tracking, scope.run_id).height == 20
    orch.close()


async def test_a_sweep_summary_is_refused_while_the_store_is_down(tmp_path):
    orch = build(down_settings(tmp_path))
    async with orch.run("outage"):
        await orch.process_request("q", user_id="u1")
    with pytest.raises(TrackingStoreError, match="kept in the journal") as refused:
        await asyncio.to_thread(settle, orch.tracker)
    assert str(Path(tmp_path) / "spool" / "journal") in str(refused.value)
    orch.close()


async def test_close_says_once_what_it_could_not_write_and_where(tmp_path, caplog):
    settings = down_settings(tmp_path)
    orch = build(settings)
    for i in range(5):
        await orch.process_request(f"q{i}", user_id="u1")
    with caplog.at_level(logging.WARNING, logger="orchestra.tracking"):
        closed = orch.close()
        orch.close()
        orch.tracker.close()
    said = [r.getMessage() for r in caplog.records if "not in the tracking store" in r.getMessage()]
    assert len(said) == 1 and str(Path(settings.spool_dir) / "journal") in said[0]
    assert not closed and closed.spooled >= 5


def test_the_old_spool_format_is_moved_into_the_journal_and_written(tracking):
    spool = Path(tracking.spool_dir)
    spool.mkdir(parents=True)
    record = {
        "request_id": "ab" * 16,
        "run_key": "legacy-run",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_001_000_000,
        "user_id": "u1",
        "session_id": None,
        "task_type": "general",
        "prompt": "spooled by an older orchestra",
        "status": "ok",
        "response": "kept",
    }
    operations = [
        {"op": "create_run", "run_key": "legacy-run", "name": "legacy", "params": {}, "tags": {}},
        {"op": "requests", "run_key": "legacy-run", "sinks": ["rows", "traces"], "records": [record]},
        {"op": "end_run", "run_key": "legacy-run", "metrics": {"requests": 1.0}, "status": "FINISHED"},
    ]
    operations[0]["start_ms"] = 1_700_000_000_000
    (spool / "00000000000000000001-1-abcdef01.jsonl").write_text("\n".join(map(json.dumps, operations)))
    tracker = Tracker(tracking)
    assert tracker.flush()
    run_id = MlflowStore(tracking).find_run("legacy-run")
    assert read_request_table(tracking, run_id)["prompt"].to_list() == ["spooled by an older orchestra"]
    assert MlflowStore(tracking).client.get_run(run_id).info.status == "FINISHED"
    assert list(spool.glob("*.jsonl")) == []
    tracker.close()


# ---- SIGKILL, four processes on one store ---------------------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, sys
    from orchestra import FunctionConnector, Orchestra
    from orchestra.tracking.settings import TrackingSettings

    settings = TrackingSettings.model_validate_json(sys.argv[1])
    name, count = sys.argv[2], int(sys.argv[3])
    config = {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["a"]}]}}
    orch = Orchestra(config, tracking=settings)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "ok"))

    async def main():
        async with orch.run(name) as scope:
            print("RUN", scope.handle.run_key, flush=True)
            for i in range(count):
                result = await orch.process_request(f"{name} {i}", user_id="u")
                print(result["metadata"]["request_id"], flush=True)  # acknowledged
        flushed = await orch.flush()
        print("FLUSH", bool(flushed), flushed.pending, flushed.error, flush=True)

    asyncio.run(main())
    closed = orch.close()
    print("CLOSE", bool(closed), closed.pending, closed.error, flush=True)
""")


def start_child(settings: TrackingSettings, name: str, count: int, **changes) -> subprocess.Popen[str]:
    arguments = [settings.model_copy(update=changes).model_dump_json(), name, str(count)]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *arguments],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_acknowledged(process: subprocess.Popen[str], kill_after: int | None) -> tuple[str, list[str]]:
    """The run key and the request ids acknowledged; SIGKILL the process after `kill_after`."""
    assert process.stdout is not None
    run_key = process.stdout.readline().split()[1]
    acknowledged: list[str] = []
    for line in process.stdout:
        if line.startswith(("FLUSH", "CLOSE")):
            assert line.split()[1] == "True", line
            continue
        acknowledged.append(line.strip())
        if kill_after is not None and len(acknowledged) == kill_after:
            process.kill()
            break
    process.wait()
    return run_key, acknowledged


@pytest.mark.slow
def test_sigkill_loses_at_most_one_unsynced_batch_across_four_processes(tracking):
    bound = 64
    settings = tracking.model_copy(update={"max_queue": bound, "sync_interval_s": 3600.0})
    # Only the count makes the journal commit (every bound/2 records): the bound is by count.
    survivors = [start_child(settings, f"survivor{i}", 60) for i in range(2)]
    batch_victim = start_child(settings, "batch-victim", 5000)
    always_victim = start_child(settings, "always-victim", 5000, durability="always")
    _, batch_acks = read_acknowledged(batch_victim, kill_after=150)
    _, always_acks = read_acknowledged(always_victim, kill_after=150)
    survivor_acks = [read_acknowledged(process, kill_after=None)[1] for process in survivors]

    recovery = Tracker(settings)  # a new start: adopts the dead processes' journals
    assert recovery.flush()
    recovery.close()
    stored = load_requests(tracking=settings)
    stored_ids = set(stored["request_id"])
    lost = [request_id for request_id in batch_acks if request_id not in stored_ids]
    assert len(lost) <= bound  # at most one unsynced batch ...
    assert lost == batch_acks[len(batch_acks) - len(lost) :]  # ... the last one acknowledged
    assert all(request_id in stored_ids for request_id in always_acks)  # `always`: nothing lost
    assert all(r in stored_ids for acks in survivor_acks for r in acks) and all(
        len(a) == 60 for a in survivor_acks
    )
    raw = stored_rows(settings)
    assert raw.height == raw["request_id"].n_unique()  # replays overwrote, nothing duplicated
    assert list((Path(settings.spool_dir) / "journal").glob("*.db")) == []
    store = MlflowStore(settings)
    for run in store.runs("tags.`orchestra.kind` = 'run'"):
        if run["name"].endswith("victim"):
            assert run["status"] == "FAILED" and int(run["tags"]["orchestra.recovered_records"]) >= 0
        else:
            assert run["status"] == "FINISHED"


# ---- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 16 MB tmpfs (needs root); the store, its artifacts and the spool all live on it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE variant covers this case)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the disk is full (to the last block)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


async def test_a_full_disk_holds_requests_back_and_loses_nothing(small_disk, empty_store_template):
    shutil.copy(empty_store_template, small_disk / "mlflow.db")
    settings = TrackingSettings(
        tracking_uri="sqlite:///mlflow.db",
        artifact_location="artifacts",
        spool_dir="spool",
        experiment="tests",
        trace_writer="thread",
        traces="all",
        max_queue=32,
        base_dir=small_disk,
    ).resolved()
    orch = build(settings)
    async with orch.run("full-disk") as scope:
        await orch.process_request("before", user_id="u1")
        assert await orch.flush()
        fill(small_disk / "filler")
        async with orch.run("begun-while-full") as begun:  # it cannot be created now: no hang
            pass
        requests = [asyncio.create_task(orch.process_request(f"q{i}", user_id="u1")) for i in range(120)]
        await eventually(lambda: orch.tracker.stats().journal_failures > 0, "the journal hit the full disk")
        status = orch.tracker.status()
        assert not status.healthy and isinstance(status.error, TrackingStoreError)
        await eventually(lambda: orch.tracker.stats().backpressure_waits > 0, "requests held back")
        assert not all(task.done() for task in requests)  # they wait for the journal: nothing dropped
        (small_disk / "filler").unlink()  # space returns
        await asyncio.gather(*requests)
    result = await orch.flush()
    assert result and result.written == 121 and orch.tracker.status().healthy
    assert orch.tracker.stats().max_in_memory <= 32
    assert read_request_table(settings, scope.run_id).height == 121
    assert traces_of(settings.sqlite_path, scope.run_id) == 121
    store = MlflowStore(settings)
    assert store.client.get_run(store.find_run(begun.handle.run_key)).info.status == "FINISHED"
    assert orch.close()


FULL_BY_RLIMIT = textwrap.dedent("""
    import asyncio, resource, signal, sys
    from pathlib import Path
    from orchestra import FunctionConnector, Orchestra
    from orchestra.tracking.settings import TrackingSettings

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    settings = TrackingSettings.model_validate_json(sys.argv[1])
    config = {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["a"]}]}}
    orch = Orchestra(config, tracking=settings)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "ok"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    async def main():
        async with orch.run("file-size-limit") as scope:
            await orch.process_request("before", user_id="u1")
            assert await orch.flush()
            journal = orch.tracker._writer.journal.path
            biggest = max(p.stat().st_size for p in journal.parent.glob(journal.name + "*"))
            resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 16384, hard))
            requests = [asyncio.create_task(orch.process_request(f"q{i}", user_id="u1")) for i in range(120)]
            while orch.tracker.stats().journal_failures == 0 or orch.tracker.stats().backpressure_waits == 0:
                await asyncio.sleep(0.02)
            print("FULL", type(orch.tracker.status().error).__name__, all(t.done() for t in requests))
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space returns
            await asyncio.gather(*requests)
        result = await orch.flush()
        print("RESULT", bool(result), result.written, orch.tracker.stats().max_in_memory, scope.run_id)

    asyncio.run(main())
    orch.close()
""")


def test_a_file_size_limit_holds_requests_back_and_loses_nothing(tracking):
    settings = tracking.model_copy(update={"max_queue": 32})
    done = subprocess.run(
        [sys.executable, "-c", FULL_BY_RLIMIT, settings.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line}
    assert lines["FULL"] == ["TrackingStoreError", "False"]
    ok, written, in_memory, run_id = lines["RESULT"]
    assert ok == "True" and int(written) == 121 and int(in_memory) <= 32
    assert read_request_table(settings, run_id).height == 121
    assert traces_of(settings.sqlite_path, run_id) == 121


# ---- the trace writer process, tracking URIs ------------------------------------------------

TRACE_PROCESS_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from orchestra import FunctionConnector, Orchestra
    from orchestra.tracking.settings import TrackingSettings

    settings = TrackingSettings.model_validate_json(sys.argv[1])
    config = {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["a"]}]}}
    orch = Orchestra(config, tracking=settings)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "ok"))
    orch.tracker.start()  # the journal and writers open on first use; now, to read the child's argv
    child = orch.tracker._writer._trace_backend._process.pid
    with open(f"/proc/{child}/cmdline", "rb") as handle:
        print("ARGV", handle.read().replace(b"\\0", b" ").decode())

    async def main():
        for i in range(5):
            await orch.process_request(f"q{i}", user_id="u1")
        print("FLUSH", bool(await orch.flush()), orch.tracker.stats().traces_written)

    asyncio.run(main())
    orch.close()
""")


def test_the_trace_process_ignores_the_working_directory_and_gets_no_settings_in_argv(tracking, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "fake-mlflow-imported"
    (work / "mlflow.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('fake mlflow')\n")
    script = tmp_path / "script.py"
    script.write_text(TRACE_PROCESS_SCRIPT)
    settings = tracking.model_copy(update={"trace_writer": "process"})
    done = subprocess.run(
        [sys.executable, str(script), settings.model_dump_json()],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line}
    assert lines["FLUSH"].split()[1:] == ["True", "5"]
    assert not marker.exists()  # the `mlflow.py` in the working directory was never imported
    argv = lines["ARGV"]
    assert "-P" in argv.split() and tracking.tracking_uri not in argv and "settings" not in argv


async def test_a_tracking_uri_password_never_reaches_log_lines_or_results(tmp_path, caplog):
    password = "pw-never-in-logs-42"
    settings = TrackingSettings(
        tracking_uri=f"http://bob:{password}@127.0.0.1:9",  # the discard port: refused at once
        spool_dir=str(tmp_path / "spool"),
        trace_writer="thread",
        traces="all",
        base_dir=tmp_path,
    )
    with caplog.at_level(logging.DEBUG, logger="orchestra"):
        orch = build(settings)
        await orch.process_request("hello", user_id="u1")
        result = await orch.flush()
        status = orch.tracker.status()
        orch.close()
    assert not result and password not in str(result) and password not in str(status.error)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "bob:***@127.0.0.1" in logged and password not in logged
