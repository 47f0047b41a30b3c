"""Load `config.yaml` (or a dict) into `Settings`, with `${ENV}` interpolation and `.env` files.

settings = load_settings("config.yaml")
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from dotenv import load_dotenv
from pydantic import BaseModel, ValidationError

from orchestra.config.schema import Settings
from orchestra.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_settings(source: str | Path | Mapping[str, Any] | Settings) -> Settings:
    """Settings from a YAML path, a plain dict or an existing `Settings` (returned as is)."""
    if isinstance(source, Settings):
        return source
    if isinstance(source, Mapping):
        return settings_from_dict(source, base_dir=Path.cwd())
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    load_dotenv(path.parent / ".env", override=False)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return settings_from_dict(raw, base_dir=path.parent, origin=str(path))


def settings_from_dict(raw: Mapping[str, Any], *, base_dir: Path, origin: str = "config") -> Settings:
    """Validate a dict after interpolating `${VAR}` and `${VAR:-default}` from the environment."""
    interpolated = interpolate_env(dict(raw))
    try:
        settings = Settings.model_validate(interpolated)
    except ValidationError as err:
        raise ConfigError(f"{origin}: " + describe_validation_error(err, Settings)) from err
    settings._base_dir = base_dir
    return settings


def interpolate_env(value: Any, key_path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; an unset VAR without default fails."""
    if isinstance(value, Mapping):
        return {k: interpolate_env(v, f"{key_path}.{k}" if key_path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_env(v, f"{key_path}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"config key {key_path!r} uses ${{{name}}}, but the environment variable "
            f"{name} is not set (set it, or write ${{{name}:-default}})"
        )

    return _ENV_PATTERN.sub(substitute, value)


def describe_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem, each naming the dotted key, what is wrong and what is allowed."""
    lines = []
    for problem in err.errors():
        location = [str(part) for part in problem["loc"]]
        key = ".".join(location) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, location[:-1])
            message = f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
        elif "input" in problem and problem["type"] not in ("missing",):
            message = f"{message} (got {problem['input']!r})"
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def _allowed_keys(model: type[BaseModel], location: list[str]) -> list[str]:
    """Field names of the section at `location`, stepping through dict keys and list indexes."""
    annotation: Any = model
    for part in location:
        annotation = _unwrap_optional(annotation)
        origin = get_origin(annotation)
        if origin in (dict, Mapping):
            annotation = get_args(annotation)[1]
        elif origin is list:
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sorted(annotation.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return annotation
