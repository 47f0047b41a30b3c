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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestra.config.files import parse_yaml, read_text
from orchestra.config.loader import (
    EnvironmentSources,
    describe_validation_error,
    interpolate_env,
    settings_from_dict,
)
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
    sources: EnvironmentSources = field(default_factory=dict)
    """Which keys of `config` hold values from `${VAR}` (masked in error messages)."""


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path, str]:
    """The spec, the folder relative paths are resolved against, and the sweep's identity hash."""
    sweep = read_sweep(path)
    return sweep.spec, sweep.folder, sweep.identity


def read_sweep(path: str | Path) -> SweepFile:
    """The sweep file at `path` and its base config, each read once; every arm's config is
    validated here, so that a mistake in the last arm stops the sweep before the first runs."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    text = read_text(path)
    spec_sources: EnvironmentSources = {}
    raw = interpolate_env(parse_yaml(text, str(path)) or {}, sources=spec_sources)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as err:
        message = describe_validation_error(err, SweepSpec, sources=spec_sources)
        raise ConfigError(f"{path}: {message}") from None
    config_path = (path.parent / spec.config).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{path}: config {spec.config!r} does not exist ({config_path})")
    config_text = read_text(config_path)
    sources: EnvironmentSources = {}
    config = interpolate_env(parse_yaml(config_text, str(config_path)) or {}, sources=sources)
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping of sections")
    identity = hashlib.sha256((text + config_text).encode()).hexdigest()[:16]
    sweep = SweepFile(spec, path.parent, identity, config_path, config, sources)
    validate_arms(sweep, expand_arms(spec), origin=str(path))
    return sweep


def validate_arms(sweep: SweepFile, arms: list[Arm], *, origin: str = "sweep") -> None:
    """Raise one `ConfigError` listing every arm whose config is invalid: unknown keys or
    values, routing or consensus strategies that are not registered, replay models that
    their dataset does not hold."""
    from orchestra.config.checks import check_settings

    problems: dict[str, list[str]] = {}
    for arm in arms:
        try:
            settings = settings_from_dict(
                apply_overrides(sweep.config, arm.overrides, arm.seed),
                base_dir=sweep.config_path.parent,
                origin="config",
                sources=sweep.sources,
            )
            check_settings(settings)
        except ConfigError as err:
            problems.setdefault(err.message, []).append(arm.name)
    if problems:
        invalid = sum(len(names) for names in problems.values())
        details = "; ".join(f"arm(s) {', '.join(names)}: {message}" for message, names in problems.items())
        raise ConfigError(f"{origin}: {invalid} of {len(arms)} arm(s) are invalid, none was run: {details}")


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
    result = json.loads(json.dumps(config, default=str))  # YAML dates (recorded_on) as ISO text
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
