"""Tracking never loses a request: a store that is down is journaled and replayed; keys never leak."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from orchestra import FunctionConnector, Orchestra, ProviderUnavailable
from orchestra.tracking.reader import read_request_table
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore
from tests.conftest import scripted_config


@pytest.fixture
def tracking(tracking: TrackingSettings) -> TrackingSettings:
    """The shared store settings with `traces: all`: these tests are about every record, its
    trace included, reaching the store (the trace budget has its own tests, test_trace_budget.py)."""
    return tracking.model_copy(update={"traces": "all"})


def _orchestra(tracking: TrackingSettings, **connectors: FunctionConnector) -> Orchestra:
    orch = Orchestra(scripted_config(*connectors), tracking=tracking)
    for name, connector in connectors.items():
        orch.model_registry.register_connector(name, connector)
    return orch


def _down_settings(tmp_path: Path) -> TrackingSettings:
    """A SQLite store whose database path is a folder: every open fails, like a store that is down."""
    database = tmp_path / "store" / "mlflow.db"
    database.mkdir(parents=True)
    return TrackingSettings(
        tracking_uri=f"sqlite:///{database}",
        artifact_location=str(tmp_path / "artifacts"),
        spool_dir=str(tmp_path / "spool"),
        experiment="tests",
        flush_interval_s=0.05,
        trace_writer="thread",
        traces="all",
        base_dir=tmp_path,
    )


async def test_store_down_at_start_spools_then_next_start_replays(tmp_path, empty_store_template):
    settings = _down_settings(tmp_path)
    orch = _orchestra(settings, a=FunctionConnector("a", lambda r: "answer"))
    async with orch.run("while-down", params={"arm": "x"}) as scope:
        results = [await orch.process_request(f"q{i}", user_id="u1") for i in range(7)]
    assert scope.run_id is None  # the store could not create the run
    assert all(r["response"] == "answer" for r in results)  # requests still answered
    assert all(r["metadata"]["mlflow_run_id"] is None for r in results)
    closed = orch.close()
    assert not closed and closed.pending == closed.spooled >= 7  # all of it safe in the journal

    # The store comes back: same URI, now a real database.
    database = Path(settings.tracking_uri.removeprefix("sqlite:///"))
    database.rmdir()
    shutil.copy(empty_store_template, database)
    recovered = _orchestra(settings, a=FunctionConnector("a"))
    assert recovered.flush_sync()  # the journal it adopted is written
    run_id = MlflowStore(settings).find_run(scope.handle.run_key)
    assert run_id is not None
    table = read_request_table(settings, run_id)
    assert sorted(table["request_id"]) == sorted(r["metadata"]["request_id"] for r in results)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(run_id)
    assert run.data.params["arm"] == "x"
    assert run.data.metrics["requests"] == 7
    assert run.info.status == "FINISHED"
    for result in results:
        assert client.get_trace(result["metadata"]["trace_id"]).info.state.value == "OK"
    recovered.close()
    assert list((Path(settings.spool_dir) / "journal").glob("*.db")) == []  # drained and removed


async def test_artifact_store_failure_mid_run_keeps_rows_in_the_spool(tracking, tmp_path):
    orch = _orchestra(tracking, a=FunctionConnector("a", lambda r: "ok"))
    async with orch.run("mid-run") as scope:
        await orch.process_request("before", user_id="u1")
        await orch.flush()
        requests_dir = next(Path(tracking.artifact_location).rglob("requests"))
        moved = requests_dir.rename(requests_dir.with_name("requests-aside"))
        requests_dir.write_text("not a folder")  # the artifact store breaks for this run
        after = await orch.process_request("after", user_id="u1")
        flushed = await orch.flush()
    assert after["response"] == "ok"
    assert not flushed and flushed.spooled >= 1 and "request table" in flushed.error
    assert not orch.close()

    requests_dir.unlink()  # the artifact store is repaired
    moved.rename(requests_dir)
    recovered = _orchestra(tracking, a=FunctionConnector("a"))
    assert recovered.flush_sync()
    table = read_request_table(tracking, scope.run_id)
    assert set(table["prompt"]) == {"before", "after"}
    assert recovered.close()


async def test_backpressure_waits_but_never_drops(tmp_path, empty_store_template):
    shutil.copy(empty_store_template, tmp_path / "mlflow.db")
    settings = TrackingSettings(
        tracking_uri="sqlite:///mlflow.db",
        artifact_location="artifacts",
        spool_dir="spool",
        max_queue=3,
        batch_size=2,
        trace_writer="thread",
        traces="all",
        base_dir=tmp_path,
    ).resolved()
    orch = _orchestra(settings, a=FunctionConnector("a", lambda r: "ok"))
    async with orch.run("burst") as scope:
        await asyncio.gather(*(orch.process_request(f"p{i}", user_id="u1") for i in range(60)))
    assert await orch.flush()
    assert orch.tracker.stats().backpressure_waits > 0
    assert orch.tracker.stats().max_in_memory <= 3  # never more than max_queue outside the journal
    assert read_request_table(settings, scope.run_id).height == 60
    assert orch.tracker.stats().traces_written == 60
    orch.close()


async def test_api_keys_never_reach_the_store(tracking, monkeypatch):
    secret = "sk-proj-THISisAfakeKEY0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    config = scripted_config("leaky")
    config["models"]["leaky"].update({"api_key": "${OPENAI_API_KEY}", "api_key_env": "OPENAI_API_KEY"})
    orch = Orchestra(config, tracking=tracking)

    def fail(provider: str) -> ProviderUnavailable:
        return ProviderUnavailable(f"401 Incorrect API key provided: {secret}", provider=provider)

    orch.model_registry.register_connector("leaky", FunctionConnector("leaky", error=fail, fail_first=1))
    orch.model_registry.register_connector("ok", FunctionConnector("ok", lambda r: "fine"))
    orch.task_router.rules[0].providers.append("ok")
    with orch.run("secret-check", params={"note": f"key is {secret}"}):
        result = await orch.process_request("hello", user_id="u1")
    orch.close()
    assert secret not in str(result)
    stored = [Path(tracking.sqlite_path)] + [
        p for p in Path(tracking.artifact_location).rglob("*") if p.is_file()
    ]
    for path in stored:
        assert secret.encode() not in path.read_bytes(), path
    assert b"[REDACTED]" in Path(tracking.sqlite_path).read_bytes()


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"])
def test_mlflow_environment_variables_override_the_file(tmp_path, monkeypatch, variable):
    from orchestra.tracking.settings import load_tracking_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    (tmp_path / "mlflow.yaml").write_text("tracking_uri: sqlite:///a.db\nexperiment: from-file\n")
    value = "sqlite:////elsewhere/b.db" if variable == "MLFLOW_TRACKING_URI" else "from-env"
    monkeypatch.setenv(variable, value)
    settings = load_tracking_settings(tmp_path / "mlflow.yaml")
    if variable == "MLFLOW_TRACKING_URI":
        assert settings.tracking_uri == value
        assert settings.experiment == "from-file"
    else:
        assert settings.experiment == value
        assert settings.tracking_uri == f"sqlite:///{tmp_path / 'a.db'}"


async def test_traces_written_by_the_child_process(tracking, client):
    settings = tracking.model_copy(update={"trace_writer": "process"})
    orch = _orchestra(settings, a=FunctionConnector("a", lambda r: "ok"))
    await orch.start()  # opens the journal and writers: the child starts
    assert orch.tracker._writer._trace_backend.alive
    async with orch.run("process-writer") as scope:
        results = [await orch.process_request(f"p{i}", user_id="u1") for i in range(12)]
    assert await orch.flush()
    assert orch.tracker.stats().traces_written == 12
    experiment_id = client.get_run(scope.run_id).info.experiment_id
    found = client.search_traces(locations=[experiment_id], run_id=scope.run_id, include_spans=False)
    assert {t.info.trace_id for t in found} == {r["metadata"]["trace_id"] for r in results}
    orch.close()
    assert not orch.tracker._writer._trace_backend.alive


async def test_a_dead_trace_process_loses_nothing(tracking, client):
    settings = tracking.model_copy(update={"trace_writer": "process"})
    orch = _orchestra(settings, a=FunctionConnector("a", lambda r: "ok"))
    await orch.start()
    backend = orch.tracker._writer._trace_backend
    async with orch.run("killed-writer") as scope:
        await orch.process_request("before", user_id="u1")
        assert await orch.flush()
        backend._process.kill()
        backend._process.wait()
        assert not backend.alive
        after = [await orch.process_request(f"after {i}", user_id="u1") for i in range(5)]
        assert await orch.flush()  # a new trace process wrote them: no restart of this one
    assert orch.tracker.stats().trace_process_restarts == 1
    for result in after:
        assert client.get_trace(result["metadata"]["trace_id"]).info.state.value == "OK"
    assert read_request_table(tracking, scope.run_id).height == 6
    assert orch.close()
