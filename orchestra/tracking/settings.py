"""Where logging goes: `mlflow.yaml`, overridden by MLflow's own environment variables.

    settings = load_tracking_settings("mlflow.yaml")
    settings.tracking_uri   # "sqlite:////abs/path/mlruns/mlflow.db"

`MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_NAME` win over the file, as MLflow users expect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestra.config.loader import describe_validation_error
from orchestra.errors import ConfigError

DEFAULT_FILE = "mlflow.yaml"
UI_ENVIRONMENT = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true"
"""A UI for browsing runs needs neither the job runner nor telemetry (starts in ~7 s, ~0.5 GB)."""


class TrackingSettings(BaseModel):
    """MLflow tracking settings; relative paths are resolved against `base_dir`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str = "orchestra"
    artifact_location: str | None = "mlruns/artifacts"
    spool_dir: str = ".orchestra/spool"
    batch_size: int = Field(default=250, ge=1)
    flush_interval_s: float = Field(default=0.2, gt=0)
    rows_per_part: int = Field(default=20_000, ge=1)
    part_interval_s: float = Field(default=10.0, gt=0)
    max_queue: int = Field(default=100_000, ge=1)
    trace_writer: Literal["process", "thread"] = "process"
    base_dir: Path = Field(default_factory=Path.cwd)

    def resolved(self) -> TrackingSettings:
        """A copy with the SQLite path, artifact location and spool folder made absolute."""
        base = self.base_dir
        uri = self.tracking_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            relative = uri.removeprefix("sqlite:///")
            if relative != ":memory:":
                uri = f"sqlite:///{(base / relative).resolve()}"
        artifact = self.artifact_location
        if artifact and "://" not in artifact:
            artifact = str((base / artifact).resolve())
        spool = Path(self.spool_dir).expanduser()
        spool = spool if spool.is_absolute() else (base / spool).resolve()
        return self.model_copy(
            update={"tracking_uri": uri, "artifact_location": artifact, "spool_dir": str(spool)}
        )

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store, or None for other stores."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///"))
        return None

    def ui_command(self, port: int = 5000, mlflow: str = "mlflow") -> str:
        """The shell command that starts the MLflow UI on this store (loopback, one worker)."""
        if not self.tracking_uri.startswith(("sqlite:", "postgresql", "mysql", "mssql", "file:")):
            return f"open {self.tracking_uri} in a browser (a tracking server)"
        artifact = f" --default-artifact-root {self.artifact_location}" if self.artifact_location else ""
        return (
            f"{UI_ENVIRONMENT} {mlflow} server --backend-store-uri {self.tracking_uri}{artifact} "
            f"--host 127.0.0.1 --port {port} --workers 1"
        )


def load_tracking_settings(
    path: str | Path | None = None, *, search_from: Path | None = None
) -> TrackingSettings:
    """Settings from `path`, or from `mlflow.yaml` in `search_from` (default: cwd) if present."""
    if path is None:
        candidate = (search_from or Path.cwd()) / DEFAULT_FILE
        path = candidate if candidate.is_file() else None
    raw: dict = {}
    base = search_from or Path.cwd()
    if path is not None:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"tracking settings file {str(path)!r} does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        base = path.parent
    raw = dict(raw)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        raw["tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        raw["experiment"] = os.environ["MLFLOW_EXPERIMENT_NAME"]
    raw.setdefault("base_dir", base)
    try:
        return TrackingSettings.model_validate(raw).resolved()
    except ValidationError as err:
        raise ConfigError(
            f"{path or 'tracking settings'}: " + describe_validation_error(err, TrackingSettings)
        ) from err
