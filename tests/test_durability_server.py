"""Against a real `mlflow server` on 127.0.0.1: a server that goes away and comes back is written
to by the running process (MLflow's cached failed version check is forgotten), and a lease on a
server is an experiment tag with an owner and a heartbeat."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from orchestra import FunctionConnector, Orchestra, TrackingStoreError
from orchestra.engine.records import RequestRecord
from orchestra.tracking.lease import TagLease
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore, forget_failed_server_checks
from tests.conftest import scripted_config

pytestmark = pytest.mark.slow


class Server:
    """An `mlflow server` on a fixed port and SQLite file, stopped and started at will."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.process is not None:
            return
        settings = TrackingSettings(
            tracking_uri=f"sqlite:///{self.folder / 'server.db'}",
            artifact_location=str(self.folder / "server-artifacts"),
        )
        environment, argv = settings.ui_argv(self.port)
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **environment},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(600):  # up to ~2 minutes on a loaded machine
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    pytest.fail("mlflow server exited at start")
                time.sleep(0.2)
        pytest.fail("mlflow server did not start")

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    control = Server(tmp_path_factory.mktemp("mlflow-server"))
    yield control
    control.stop()


def settings_for(server: Server, folder: Path, **changes) -> TrackingSettings:
    return TrackingSettings(
        tracking_uri=server.uri,
        artifact_location=None,
        spool_dir=str(folder / "spool"),
        experiment="server",
        traces="all",  # these tests check that every trace reaches the server
        base_dir=folder,
        **changes,
    )


def test_a_server_that_comes_back_is_written_to_without_a_restart(server, tmp_path):
    server.stop()
    settings = settings_for(server, tmp_path, trace_writer="process")
    orch = Orchestra(scripted_config("a"), tracking=settings)
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "ok"))

    async def requests(scope_name: str, count: int) -> list[str]:
        async with orch.run(scope_name):
            return [
                (await orch.process_request(f"{scope_name} {i}", user_id="u1"))["metadata"]["trace_id"]
                for i in range(count)
            ]

    before = asyncio.run(requests("while-down", 10))
    assert not orch.flush_sync()  # the server is down: nothing is reported as written
    server.start()
    assert orch.flush_sync()  # the same process writes everything once it is back

    store = MlflowStore(settings)
    run_id = store.create_run("cache", run_key="cache", params={}, tags={})
    forget_failed_server_checks()  # nothing cached from earlier writes: the first check is below
    server.stop()
    during = asyncio.run(requests("down-again", 10))
    assert not orch.flush_sync() and isinstance(orch.tracker.status().error, TrackingStoreError)
    record = RequestRecord("c" * 32, "cache", time.time_ns(), time.time_ns(), "u1", None, "general", "hi")
    with pytest.raises(TrackingStoreError):  # MLflow's version check fails here (and caches it) ...
        store.write_traces(run_id, [record])
    server.start()
    assert store.write_traces(run_id, [record]) == 1  # ... and is forgotten: written once it is back
    assert orch.flush_sync()
    for trace_id in [*before, *during, record.trace_id]:
        assert store.client.get_trace(trace_id).info.state.value == "OK"
    assert orch.close()


def test_a_lease_on_a_server_is_a_tag_with_an_owner_and_a_heartbeat(server, tmp_path):
    server.start()
    store = MlflowStore(settings_for(server, tmp_path))
    now = [1_000_000.0]
    options = {"heartbeat_s": 3600.0, "stale_after_s": 60.0, "settle_s": 0.0, "clock": lambda: now[0]}
    first = TagLease(store, "sweep-x", **options)
    second = TagLease(store, "sweep-x", **options)
    assert first.acquire()
    assert not second.acquire() and first.owner in second.holder
    now[0] += 61.0  # the first holder's heartbeat is stale: it died, or hangs
    assert second.acquire()
    first.release()  # no longer the owner: it leaves the tag alone
    assert not TagLease(store, "sweep-x", **options).acquire()
    second.release()
    assert TagLease(store, "sweep-x", **options).acquire()


def test_assessments_reach_a_server_once(server, tmp_path):
    from tests.test_assessments import _record

    server.start()
    store = MlflowStore(settings_for(server, tmp_path))
    run_id = store.create_run("feedback", run_key="feedback", params={}, tags={})
    records = [_record(f"{i + 1:031x}f", 1.0, 0.5) for i in range(3)]
    assert store.write_traces(run_id, records) == 3
    assert store.write_traces(run_id, records) == 3  # a retried batch: its traces again ...
    assert store.write_feedback(records) == 0  # ... and no assessment twice
    for record in records:
        assessments = store.client.get_trace(record.trace_id).info.assessments
        assert sorted((a.name, a.value) for a in assessments) == [
            ("confidence", 0.5),
            ("consensus_agreement", 0.5),
            ("quality", 0.0),
            ("quality", 1.0),
            ("quality", 1.0),
        ]
