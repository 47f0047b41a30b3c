"""Where logging goes: a profile of `mlflow.yaml`, or MLflow's own environment variables.

    settings = load_tracking_settings("mlflow.yaml")                  # the file's default profile
    settings = load_tracking_settings("mlflow.yaml", profile="team")  # or ORCHESTRA_PROFILE=team
    settings.tracking_uri   # "sqlite:////abs/path/mlruns/mlflow.db"

A profile chosen by name (`--profile`, `ORCHESTRA_PROFILE`) is used as written. Otherwise
`MLFLOW_TRACKING_URI` and `MLFLOW_EXPERIMENT_NAME` win over the file's default profile, as
MLflow users expect. See `profiles.py` for the file's shape.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestra.config.files import read_yaml
from orchestra.config.loader import describe_validation_error
from orchestra.errors import ConfigError
from orchestra.tracking.profiles import PROFILE_VARIABLE, select_profile
from orchestra.tracking.uris import check_scheme, masked_uri, register_uri_secret

DEFAULT_FILE = "mlflow.yaml"
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
"""A UI for browsing runs needs neither the job runner nor telemetry (starts in ~7 s, ~0.5 GB)."""
_SERVABLE_STORES = ("sqlite:", "postgresql", "mysql", "mssql", "file:")
"""Stores `mlflow server` can serve; any other tracking URI is a tracking server already."""
_STORE_URI_VARIABLE = "MLFLOW_BACKEND_STORE_URI"
"""`mlflow server --backend-store-uri` read from the environment (argv is visible in `ps`)."""


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
    durability: Literal["batch", "always", "none"] = "batch"
    """When a record is safe: `batch` fsyncs the journal every `sync_interval_s` or `max_queue`
    records, `always` before `process_request` returns, `none` never (see Durability in
    docs/guides/tracking.md)."""
    sync_interval_s: float = Field(default=0.05, gt=0)
    max_queue: int = Field(default=256, ge=1)
    """Records held in memory before they are in the journal; producers wait beyond it."""
    trace_writer: Literal["process", "thread"] = "process"
    traces: Literal["budget", "all", "off"] = "budget"
    """Which requests get an MLflow trace while they are logged: `budget` (default) those the
    trace-writing CPU budget below affords, `all` every one before a flush returns, `off` none.
    A request without a trace is *deferred*: its row is in the request table, the run counts it
    (`traces_deferred`), and `orchestra traces RUN_ID` writes it later (docs/guides/tracking.md)."""
    trace_cpu_ms_per_request: float = Field(default=0.2, ge=0)
    """Trace-writing CPU earned by each request logged (with `traces: budget`)."""
    trace_cpu_ms_per_s: float = Field(default=20.0, ge=0)
    """Trace-writing CPU earned per second whatever the load: a few requests a second (a person
    in a notebook) all get their trace live."""
    trace_cpu_burst_ms: float = Field(default=150.0, ge=0)
    """The most trace-writing CPU saved up while idle (a burst of requests is traced at once)."""
    redact_patterns: bool = True  # mask unregistered keys by format (sk-..., AIza..., AKIA...)
    base_dir: Path = Field(default_factory=Path.cwd)

    @field_validator("tracking_uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        check_scheme(uri)
        return uri

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

    def ui_argv(self, port: int = 5000) -> tuple[dict[str, str], list[str]] | None:
        """The extra environment and argv of `mlflow server` on this store (loopback, one
        worker), or None when the store is a tracking server (its UI is already served)."""
        if not self.tracking_uri.startswith(_SERVABLE_STORES):
            return None
        local = Path(sys.executable).with_name("mlflow")  # the venv's mlflow, if this is one
        mlflow = str(local) if local.exists() else "mlflow"
        environment = dict(UI_ENVIRONMENT)
        argv = [mlflow, "server"]
        if masked_uri(self.tracking_uri) != self.tracking_uri:
            environment[_STORE_URI_VARIABLE] = self.tracking_uri  # a password stays out of `ps`
        else:
            argv += ["--backend-store-uri", self.tracking_uri]
        if self.artifact_location:
            argv += ["--default-artifact-root", self.artifact_location]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        return environment, argv

    def ui_command(self, port: int = 5000) -> str:
        """`ui_argv` as one shell command line (or, for a tracking server, where to look)."""
        command = self.ui_argv(port)
        if command is None:
            return f"open {self.tracking_uri} in a browser (a tracking server)"
        environment, argv = command
        assignments = [f"{key}={shlex.quote(masked_uri(value))}" for key, value in environment.items()]
        return " ".join([*assignments, shlex.join(argv)])


def load_tracking_settings(
    path: str | Path | None = None, *, search_from: Path | None = None, profile: str | None = None
) -> TrackingSettings:
    """Settings from `path`, or from `mlflow.yaml` in `search_from` (default: cwd) if present;
    `profile` (else `ORCHESTRA_PROFILE`, else the file's `profile:`) picks one of its profiles."""
    if path is None:
        candidate = (search_from or Path.cwd()) / DEFAULT_FILE
        path = candidate if candidate.is_file() else None
    raw: dict = {}
    base = search_from or Path.cwd()
    if path is not None:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"tracking settings file {str(path)!r} does not exist")
        raw = read_yaml(path) or {}  # UTF-8 only, duplicate keys rejected
        base = path.parent
    chosen = profile or os.environ.get(PROFILE_VARIABLE) or None
    raw = select_profile(raw, chosen, origin=str(path or "tracking settings"))
    if chosen is None and os.environ.get("MLFLOW_TRACKING_URI"):
        raw["tracking_uri"] = os.environ["MLFLOW_TRACKING_URI"]
    if chosen is None and os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        raw["experiment"] = os.environ["MLFLOW_EXPERIMENT_NAME"]
    raw.setdefault("base_dir", base)
    uri = raw.get("tracking_uri")
    if isinstance(uri, str):
        register_uri_secret(uri)
    try:
        return TrackingSettings.model_validate(raw).resolved()
    except ValidationError as err:
        message = describe_validation_error(err, TrackingSettings)
        if isinstance(uri, str):
            message = message.replace(uri, masked_uri(uri))
        raise ConfigError(f"{path or 'tracking settings'}: {message}") from None
