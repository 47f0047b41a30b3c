"""A team's shared store: `mlflow server` on PostgreSQL, serving the artifacts itself.

    environment, argv = team_server_command(
        "postgresql://mlflow:secret@db:5432/mlflow", "/srv/mlflow-artifacts", host="0.0.0.0", workers=4
    )
    subprocess.Popen(argv, env={**os.environ, **environment})

The store URI travels in the environment (`MLFLOW_BACKEND_STORE_URI`, which `mlflow server`
reads and hands its workers the same way), never in a command line: `ps` and `/proc/*/cmdline`
show no password. With `--artifacts-destination` the server proxies artifacts (`mlflow-artifacts:`
URIs), so each member reads and writes the request tables through it and needs no access to the
artifact storage. Members log with `tracking_uri: http://HOST:PORT` (the `team` profile).
"""

from __future__ import annotations

import sys
from pathlib import Path

from orchestra.tracking.settings import UI_ENVIRONMENT
from orchestra.tracking.uris import check_scheme

STORE_URI_VARIABLE = "MLFLOW_BACKEND_STORE_URI"
MEMORY_PER_WORKER_GB = 0.5
"""What one server worker holds, measured here with MLflow 3.17 (a UI-sized server is ~0.5 GB)."""


def team_server_command(
    store_uri: str,
    artifacts_destination: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
) -> tuple[dict[str, str], list[str]]:
    """The environment and argv of `mlflow server` on `store_uri` (e.g. PostgreSQL), proxying
    artifacts to `artifacts_destination` (a folder, or s3://, gs://, ... for several hosts)."""
    check_scheme(store_uri)
    if not store_uri.startswith(("postgresql", "mysql", "mssql", "sqlite:")):
        raise ValueError("a team server needs a SQL store URI (postgresql://user:password@host/db)")
    destination = str(artifacts_destination)
    if "://" not in destination:
        destination = str(Path(destination).expanduser().resolve())
    local = Path(sys.executable).with_name("mlflow")  # the venv's mlflow, if this is one
    argv = [
        str(local) if local.exists() else "mlflow",
        "server",
        "--artifacts-destination",
        destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return {**UI_ENVIRONMENT, STORE_URI_VARIABLE: store_uri}, argv
