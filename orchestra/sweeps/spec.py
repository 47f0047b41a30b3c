"""A sweep file (`experiments/*.yaml`): a prompt set, a base config, and a grid of overrides.

    name: alpacaeval-routing
    config: ../config.yaml
    prompts: {dataset: alpacaeval, limit: 200}
    grid:
      routing.default_strategy: [rules, performance_based, random]
    seeds: [0]
    repetitions: 1
    concurrency: 32

Every combination of the grid (times seeds and repetitions), or the explicit `arms`, is one arm:
one MLflow run under the sweep's parent run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestra.config.loader import describe_validation_error, interpolate_env
from orchestra.errors import ConfigError


class PromptSource(BaseModel):
    """Exactly one of: a dataset of the config, a file, or a generated set."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    file: str | None = None
    column: str = "prompt"
    task_type_column: str | None = None
    generated: dict[str, Any] | None = None
    task_type: str | None = None
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> PromptSource:
        given = [name for name in ("dataset", "file", "generated") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"prompts needs exactly one of dataset, file, generated (got {given or 'none'})")
        return self


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    config: str
    prompts: PromptSource
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    arms: list[dict[str, Any]] | None = None
    seeds: list[int] = Field(default_factory=lambda: [0])
    repetitions: int = Field(default=1, ge=1)
    concurrency: int = Field(default=32, ge=1)
    user_id: str = "sweep"
    description: str = ""


@dataclass(frozen=True)
class Arm:
    """One configuration of the sweep: config overrides, a seed and a repetition number."""

    overrides: dict[str, Any]
    seed: int
    repetition: int
    label: str | None = None

    @property
    def arm_id(self) -> str:
        key = json.dumps(
            {"overrides": self.overrides, "seed": self.seed, "repetition": self.repetition},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        if self.label:
            suffix = f",seed={self.seed}" + (f",rep={self.repetition}" if self.repetition else "")
            return self.label + suffix
        parts = [f"{key.split('.')[-1]}={_short(value)}" for key, value in self.overrides.items()]
        parts.append(f"seed={self.seed}")
        if self.repetition:
            parts.append(f"rep={self.repetition}")
        return ",".join(parts)


@dataclass(frozen=True)
class SweepFile:
    """A read sweep file: its spec, its folder, its identity, and its base config (parsed)."""

    spec: SweepSpec
    folder: Path
    identity: str
    config_path: Path
    config: dict[str, Any]
    """The base config file's content, environment variables interpolated."""


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path, str]:
    """The spec, the folder relative paths are resolved against, and the sweep's identity hash."""
    sweep = read_sweep(path)
    return sweep.spec, sweep.folder, sweep.identity


def read_sweep(path: str | Path) -> SweepFile:
    """The sweep file at `path` and its base config, each read once."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        raw = interpolate_env(yaml.safe_load(text) or {})
        spec = SweepSpec.model_validate(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except ValidationError as err:
        raise ConfigError(f"{path}: " + describe_validation_error(err, SweepSpec)) from err
    config_path = (path.parent / spec.config).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{path}: config {spec.config!r} does not exist ({config_path})")
    config_text = config_path.read_text(encoding="utf-8")
    try:
        config = interpolate_env(yaml.safe_load(config_text) or {})
    except yaml.YAMLError as err:
        raise ConfigError(f"{config_path}: not valid YAML: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping of sections")
    identity = hashlib.sha256((text + config_text).encode()).hexdigest()[:16]
    return SweepFile(spec, path.parent, identity, config_path, config)


def expand_arms(spec: SweepSpec) -> list[Arm]:
    """The grid's combinations (or the explicit arms), for every seed and repetition."""
    if spec.arms is not None:  # an explicit arm may carry a `name`; the rest are config overrides
        combinations = [dict(arm) for arm in spec.arms]
    elif spec.grid:
        keys = list(spec.grid)
        combinations = [
            dict(zip(keys, values, strict=True)) for values in itertools.product(*spec.grid.values())
        ]
    else:
        combinations = [{}]
    arms = []
    for combination in combinations:
        label = combination.pop("name", None)
        for seed in spec.seeds:
            for repetition in range(spec.repetitions):
                arms.append(Arm(combination, seed, repetition, label))
    return arms


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """A deep copy of `config` with each dotted key set (e.g. routing.default_strategy)."""
    result = json.loads(json.dumps(config))
    result.setdefault("framework", {})["seed"] = seed
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"sweep override {dotted!r}: {part!r} is not a section")
        node[leaf] = value
    return result


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
