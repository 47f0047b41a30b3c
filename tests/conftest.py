"""Shared fixtures: real MLflow SQLite stores in temporary folders, and the recorded dataset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
for _name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
    os.environ.pop(_name, None)

from orchestra import FunctionConnector, Orchestra  # noqa: E402
from orchestra.tracking.settings import TrackingSettings  # noqa: E402
from tests.team_services import postgres, ray_cluster, team_server  # noqa: E402, F401  (session fixtures)

ROOT = Path(__file__).resolve().parents[1]
ALPACA = ROOT / "data" / "alpacaeval" / "responses.parquet"
RECORDED_MODELS = [
    "gpt4",
    "claude-2.1",
    "gemini-pro",
    "gpt-3.5-turbo-0301",
    "Mixtral-8x7B-Instruct-v0.1",
    "Mistral-7B-Instruct-v0.2",
    "llama-2-70b-chat-hf",
    "gpt4_1106_preview",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="also run tests that call the real provider APIs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="calls real provider APIs: run with --live and API keys set")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def empty_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite database, created once (initialising takes seconds)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("template")
    MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def tracking(tmp_path: Path, empty_store_template: Path) -> TrackingSettings:
    """Settings for a fresh real SQLite store, artifact folder and spool in `tmp_path`."""
    shutil.copy(empty_store_template, tmp_path / "mlflow.db")
    return TrackingSettings(
        tracking_uri="sqlite:///mlflow.db",
        artifact_location="artifacts",
        spool_dir="spool",
        experiment="tests",
        flush_interval_s=0.05,
        trace_writer="thread",  # the child-process writer has its own tests; spawning costs ~2 s
        base_dir=tmp_path,
    ).resolved()


@pytest.fixture
def client(tracking: TrackingSettings):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking.tracking_uri)


FAST_RETRIES = {"initial_delay_s": 0.001, "max_delay_s": 0.01}


def scripted_config(*names: str, rules: list[dict] | None = None, **sections) -> dict:
    """A config whose providers are registered in code (type function); retries back off fast."""
    performance = {"retry": FAST_RETRIES, **sections.pop("performance", {})}
    return {
        "models": {name: {"type": "function"} for name in names},
        "routing": {"rules": rules or [{"providers": list(names)}]},
        "performance": performance,
        **sections,
    }


@pytest.fixture
def make_orchestra(tracking: TrackingSettings):
    """Build an `Orchestra` over scripted providers; closes them all at the end of the test."""
    created: list[Orchestra] = []

    def build(
        connectors: dict[str, FunctionConnector], rules: list[dict] | None = None, **sections
    ) -> Orchestra:
        orch = Orchestra(scripted_config(*connectors, rules=rules, **sections), tracking=tracking)
        for name, connector in connectors.items():
            orch.model_registry.register_connector(name, connector)
        created.append(orch)
        return orch

    yield build
    for orch in created:
        orch.close()


def alpaca_config(**routing) -> dict:
    """The offline config's providers and dataset, with `routing` replaced."""
    models = {
        "gpt-4": "gpt4",
        "claude-2.1": "claude-2.1",
        "gemini-pro": "gemini-pro",
        "mixtral-8x7b": "Mixtral-8x7B-Instruct-v0.1",
        "mistral-7b": "Mistral-7B-Instruct-v0.2",
    }
    return {
        "datasets": {
            "alpacaeval": {
                "path": str(ALPACA),
                "prompt_column": "instruction",
                "quality_column": "preference",
                "quality_offset": -1.0,
                "group_column": "dataset",
            }
        },
        "models": {
            name: {"type": "replay", "dataset": "alpacaeval", "model": m} for name, m in models.items()
        },
        "routing": routing or {"rules": [{"providers": ["gpt-4"]}]},
    }


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    """A real redis-server on 127.0.0.1 (Debian package; scripts/install-test-services.sh)."""
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/install-test-services.sh")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
