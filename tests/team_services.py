"""Session fixtures for the team store: a real PostgreSQL cluster and a real `mlflow server` on it.

PostgreSQL comes from Debian's packages (scripts/test-postgres.sh installs it when missing and
starts a cluster in a temporary folder on 127.0.0.1); the server is started the way a team
starts it (`orchestra.tracking.team.team_server_command`), once per session (~7 s, ~0.5 GB).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestra.tracking.team import team_server_command

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test-postgres.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Postgres:
    """A running test cluster; the role `orchestra` may create databases."""

    folder: Path
    port: int
    password: str

    def uri(self, database: str) -> str:
        return f"postgresql://orchestra:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URI."""
        import psycopg

        connection = psycopg.connect(self.uri("postgres"))
        connection.autocommit = True
        with contextlib.closing(connection), connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def query(self, database: str, sql: str, *parameters: object) -> list[tuple]:
        import psycopg

        with (
            contextlib.closing(psycopg.connect(self.uri(database))) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, parameters)
            return cursor.fetchall()


@dataclass
class TeamServer:
    """An `mlflow server` on a PostgreSQL database, proxying artifacts; stopped and restarted at will."""

    store_uri: str
    artifacts: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.process is not None:
            return
        environment, argv = team_server_command(self.store_uri, self.artifacts, port=self.port, workers=1)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv, env={**os.environ, **environment}, stdout=log, stderr=log, start_new_session=True
            )
        for _ in range(600):  # up to ~2 minutes on a loaded machine
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    pytest.fail(f"mlflow server exited at start: {self.log.read_text()[-2000:]}")
                time.sleep(0.2)
        pytest.fail("mlflow server did not start")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of this session on 127.0.0.1 (folder and port of its own)."""
    folder = Path(tempfile.mkdtemp(prefix="orchestra-pg-", dir="/tmp"))  # the postgres user reaches it
    cluster = Postgres(folder, free_port(), f"pw{secrets.token_hex(12)}")
    environment = {**os.environ, "ORCHESTRA_TEST_PG_PASSWORD": cluster.password}
    started = subprocess.run(
        [str(SCRIPT), "start", str(folder), str(cluster.port)],
        env=environment,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        pytest.fail(f"scripts/test-postgres.sh failed: {started.stderr[-2000:]}")
    yield cluster
    subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def team_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    """`mlflow server --backend-store-uri postgresql://... --artifacts-destination ...`, one worker."""
    folder = tmp_path_factory.mktemp("team-server")
    server = TeamServer(postgres.create_database("team"), folder / "artifacts", folder / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance for the session: 4 logical CPUs (four workers at once), a small object
    store, no dashboard. Sweeps find it running and leave it running."""
    import ray

    ray.init(
        num_cpus=4,
        object_store_memory=100 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}},
    )
    yield
    ray.shutdown()
