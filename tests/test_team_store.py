"""The team store: a real `mlflow server` on a real PostgreSQL (tests/team_services.py).

Four processes logging at once lose and duplicate nothing; a server that goes away mid-sweep and
comes back is written to by the same sweep; analysis reads the store back; the store's password
reaches no log, process list or MLflow param; the schema race and the tag lease hold on PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from orchestra.analysis.ab import ab_report
from orchestra.sweeps import run_sweep
from orchestra.testing import FakeOpenAI
from orchestra.tracking.lease import TagLease
from orchestra.tracking.reader import load_requests
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from tests.conftest import ROOT
from tests.team_services import Postgres, TeamServer

pytestmark = [pytest.mark.team, pytest.mark.slow]

WRITER = textwrap.dedent("""
    import asyncio, os, sys
    uri = os.environ["MLFLOW_TRACKING_URI"]  # the environment, not argv: it may hold a password
    from orchestra import FunctionConnector, Orchestra
    from orchestra.tracking.settings import TrackingSettings
    from tests.conftest import scripted_config

    spool, name, count, prefix = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[6]
    settings = TrackingSettings(
        tracking_uri=uri, artifact_location=None, spool_dir=spool, experiment="team-writers",
        trace_writer=sys.argv[5], traces="all",
    )
    orch = Orchestra(scripted_config("a"), tracking=settings)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "ok " + r.prompt))

    async def main():
        async with orch.run(name) as scope:
            await asyncio.gather(*(orch.process_request(f"{prefix} {i}", user_id="u") for i in range(count)))
        return scope.run_id

    print("RUN", asyncio.run(main()))
    print("FLUSHED", bool(orch.close()))
""")


def write_from(
    uri: str, spool: Path, name: str, count: int, trace_writer: str = "thread", prefix: str | None = None
) -> subprocess.Popen:
    """A process logging `count` requests (prompts "<prefix> <i>") to run `name` at `uri`."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, "-", str(spool), name, str(count), trace_writer, prefix or name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri},
    )


def finished(process: subprocess.Popen) -> tuple[dict[str, str], str]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip()), err


def team_settings(server: TeamServer, folder: Path, experiment: str) -> TrackingSettings:
    return TrackingSettings(
        tracking_uri=server.uri,
        artifact_location=None,
        spool_dir=str(folder / "spool"),
        experiment=experiment,
        trace_writer="thread",
        traces="all",  # these tests count every trace in the team store
        base_dir=folder,
    )


def raw_rows(store: MlflowStore, run_id: str, folder: Path) -> int:
    """Rows in the run's parquet parts as stored, before any de-duplication on reading."""
    local = store.client.download_artifacts(run_id, "requests", str(folder / run_id))
    return sum(pq.read_metadata(part).num_rows for part in Path(local).glob("*.parquet"))


def traces_in(postgres: Postgres, experiment_id: str) -> int:
    """Traces of the experiment, counted in PostgreSQL itself."""
    return postgres.query(
        "team", "SELECT count(*) FROM trace_info WHERE experiment_id = %s", int(experiment_id)
    )[0][0]


def test_four_processes_of_500_requests_give_2000_rows_2000_traces_and_their_metrics(
    team_server: TeamServer, postgres: Postgres, tmp_path: Path
):
    writers = [write_from(team_server.uri, tmp_path / "spool", f"writer-{i}", 500) for i in range(4)]
    runs = [finished(writer)[0] for writer in writers]
    assert all(run["FLUSHED"] == "True" for run in runs)
    store = MlflowStore(team_settings(team_server, tmp_path, "team-writers"))
    for run in runs:
        logged = store.client.get_run(run["RUN"])
        assert logged.data.metrics["requests"] == 500 and logged.data.metrics["errors"] == 0
        assert logged.info.status == "FINISHED"
        assert raw_rows(store, run["RUN"], tmp_path) == 500  # nothing written twice
    requests = load_requests(tracking=store.settings)
    assert requests.height == 2000 and requests["request_id"].n_unique() == 2000
    assert sorted(requests.group_by("run_name").len()["len"].to_list()) == [500] * 4
    assert traces_in(postgres, store.experiment_id) == 2000


def outage_sweep(folder: Path, fake: FakeOpenAI, prompts: int) -> Path:
    config = {
        "models": {
            "fake": {
                "type": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.base_url,
                "api_key": "test-key",
            }
        },
        "routing": {"rules": [{"providers": ["fake"]}]},
        "performance": {"retry": {"initial_delay_s": 0.001, "max_delay_s": 0.01}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    sweep = {
        "name": "outage",
        "config": "config.yaml",
        "prompts": {"generated": {"template": "Question {n}?", "values": {"n": list(range(prompts))}}},
        "concurrency": 8,
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return folder / "sweep.yaml"


def test_a_server_down_mid_sweep_loses_nothing_and_duplicates_nothing(
    team_server: TeamServer, postgres: Postgres, tmp_path: Path
):
    """The server goes away after the 100th provider call and comes back at the 250th (counted,
    not timed: the fake provider's reply stops and starts it); the sweep is never restarted."""
    calls = 0
    lock = threading.Lock()

    def reply(prompt: str) -> str:
        nonlocal calls
        with lock:
            calls += 1
            if calls == 100:
                team_server.stop()
            elif calls == 250:
                team_server.start()  # the 250th answer waits until the server is back
        return f"answer to {prompt}"

    from orchestra.app.dashboard import SweepMonitor

    settings = team_settings(team_server, tmp_path, "team-outage")
    try:
        with FakeOpenAI(reply=reply) as fake:
            summary = run_sweep(outage_sweep(tmp_path, fake, 400), tracking=settings, progress=False)
    finally:
        team_server.start()
    assert calls == 400
    store = MlflowStore(settings)
    (row,) = summary.table.iter_rows(named=True)
    assert row["requests"] == 400 and row["errors"] == 0
    arm = store.client.get_run(row["run_id"])
    assert arm.data.metrics["requests"] == 400 and arm.info.status == "FINISHED"
    history = store.client.get_metric_history(row["run_id"], "requests_done")
    assert max(metric.value for metric in history) == 400  # progress logged during the outage arrived
    assert raw_rows(store, row["run_id"], tmp_path) == 400
    requests = load_requests(tracking=settings)
    assert requests.height == 400 and requests["request_id"].n_unique() == 400
    assert traces_in(postgres, store.experiment_id) == 400
    monitor = SweepMonitor("outage", tracking=settings)  # the dashboard's view of the same sweep
    assert monitor.refresh()["done"].to_list() == [400]


def test_analysis_and_the_dashboard_read_the_team_store_back(team_server: TeamServer, tmp_path: Path):
    from orchestra.app.dashboard import RunsDashboard

    settings = team_settings(team_server, tmp_path, "team-analysis")
    writers = [
        write_from(settings.tracking_uri, tmp_path / "spool", name, 60, prefix="q") for name in ("a", "b")
    ]
    run_ids = [finished(writer)[0]["RUN"] for writer in writers]  # written by other processes
    frame = load_requests(run_ids=run_ids, tracking=settings)
    assert frame.height == 120 and set(frame["status"]) == {"ok"} and set(frame["run_name"]) == {"a", "b"}
    report = ab_report(frame, arm="run_name", unit="prompt")
    assert report.table.height > 0 and "paired" in report._repr_html_()
    dashboard = RunsDashboard(tracking=settings.model_copy(update={"experiment": "team-writers"}))
    dashboard.select(run_ids)
    assert dashboard.compare() is not None and "120 requests from 2 run(s)" in dashboard.status.value


def test_the_store_password_reaches_no_log_process_list_or_param(
    team_server: TeamServer, postgres: Postgres, tmp_path: Path
):
    password = postgres.password
    # The server orchestra starts, and every process under it (uvicorn and its workers).
    assert team_server.process is not None
    for pid in process_tree(team_server.process.pid):
        assert password not in command_line(pid)
    # A process logging straight to PostgreSQL, with the trace writer in a child process.
    direct = postgres.create_database("team_direct")
    writer = write_from(direct, tmp_path / "spool", "direct", 20, trace_writer="process")
    seen: list[str] = []
    while writer.poll() is None:  # sample the command lines of the writer and its trace process
        seen += [command_line(pid) for pid in process_tree(writer.pid)]
        time.sleep(0.05)
    out, err = finished(writer)
    assert out["FLUSHED"] == "True"
    assert any("orchestra.tracking.trace_process" in line for line in seen)  # the child was seen
    assert not any(password in line for line in seen)
    assert password not in err and password not in team_server.log.read_text(errors="replace")
    store = MlflowStore(
        TrackingSettings(tracking_uri=direct, artifact_location=None, experiment="team-writers")
    )
    for run in store.runs():
        assert password not in repr(run["params"]) + repr(run["tags"])
    assert password not in str(store.settings.ui_command())


def process_tree(root: int) -> list[int]:
    """`root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


SCHEMA = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from orchestra.tracking.settings import TrackingSettings
    from orchestra.tracking.store import MlflowStore

    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.01)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    store = MlflowStore(TrackingSettings(tracking_uri=uri, artifact_location=None, experiment="race"))
    print("EXPERIMENT", store.experiment_id)
""")


def test_four_processes_on_a_fresh_postgresql_database_create_its_schema_once(postgres: Postgres, tmp_path):
    uri = postgres.create_database("team_fresh")
    go = tmp_path / "go"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", SCHEMA, "-", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri},
        )
        for _ in range(4)
    ]
    go.touch()  # all four open the store at once
    outputs = [finished(starter)[0] for starter in starters]
    assert len({output["EXPERIMENT"] for output in outputs}) == 1  # one experiment, found by all
    assert len(postgres.query("team_fresh", "SELECT version_num FROM alembic_version")) == 1
    assert postgres.query("team_fresh", "SELECT count(*) FROM experiments WHERE name = 'race'") == [(1,)]


@pytest.mark.parametrize("where", ["postgresql", "server"])
def test_a_lease_claimed_by_two_at_once_on_postgresql_goes_to_exactly_one(
    where: str, postgres: Postgres, team_server: TeamServer, tmp_path: Path
):
    """Both read the tag, then both write their claim, then both read it back: the injected clock
    (read just before a claim is written) and sleep (the settle wait) are barriers, so the race is
    the worst case every time. The last writer holds it, the other sees it lost."""
    uri = postgres.create_database("team_lease") if where == "postgresql" else team_server.uri
    settings = TrackingSettings(tracking_uri=uri, artifact_location=None, experiment=f"lease-{where}")
    before_write, before_read_back = threading.Barrier(2), threading.Barrier(2)
    now = 1_000_000.0

    def lockstep_clock() -> Callable[[], float]:
        calls = itertools.count()

        def clock() -> float:
            if next(calls) == 0:  # the claim's heartbeat: written once both have read the tag
                before_write.wait(60)
            return now

        return clock

    leases = [
        TagLease(
            MlflowStore(settings),
            "sweep-x",
            heartbeat_s=3600.0,
            settle_s=1.0,
            clock=lockstep_clock(),
            sleep=lambda _: before_read_back.wait(60),
        )
        for _ in range(2)
    ]
    won: list[bool] = [False, False]

    def claim(index: int) -> None:
        won[index] = leases[index].acquire()

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(won) == [False, True]
    winner = leases[won.index(True)]
    loser = leases[won.index(False)]
    assert winner.owner in loser.holder
    winner.release()
    after = TagLease(MlflowStore(settings), "sweep-x", settle_s=0.0, clock=lambda: now, sleep=lambda _: None)
    assert after.acquire()  # released: free for the next taker at once
    after.release()
