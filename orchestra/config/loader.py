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

from dotenv import load_dotenv
from pydantic import BaseModel, ValidationError

from orchestra.config.files import read_yaml
from orchestra.config.schema import Settings
from orchestra.errors import ConfigError
from orchestra.redact import SECRETS

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_VARIABLE_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_SECRET_FIELD_WORDS = frozenset({"key", "token", "secret", "password", "credential", "credentials"})

_INPUT_NOT_SHOWN = frozenset({"missing", "value_error", "assertion_error"})
"""Error types whose input is not the bad value: what is missing, or the section a validator
of ours checked (its message names the bad key and value)."""

_INPUT_NOT_SHOWN = frozenset({"missing", "value_error", "assertion_error"})
"""Error types whose input is not the bad value: what is missing, or the section a validator
of ours checked (its message names the bad key and value)."""

EnvironmentSources = dict[str, list[str]]
"""Dotted key path -> the environment variables interpolated into its value."""


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
    raw = read_yaml(path) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return settings_from_dict(raw, base_dir=path.parent, origin=str(path))


def settings_from_dict(
    raw: Mapping[str, Any],
    *,
    base_dir: Path,
    origin: str = "config",
    sources: EnvironmentSources | None = None,
) -> Settings:
    """Validate a dict after interpolating `${VAR}` and `${VAR:-default}` from the environment.

    `sources` names the values a caller interpolated already (their errors are masked too)."""
    found: EnvironmentSources = dict(sources or {})
    interpolated = interpolate_env(dict(raw), sources=found)
    try:
        settings = Settings.model_validate(interpolated)
    except ValidationError as err:
        message = describe_validation_error(err, Settings, sources=found)
        raise ConfigError(f"{origin}: {message}") from None  # the cause would print the values
    settings._base_dir = base_dir
    return settings


def interpolate_env(value: Any, key_path: str = "", *, sources: EnvironmentSources | None = None) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; an unset VAR without default fails.

    The key path of every value that received a variable is added to `sources`; a variable
    named like a credential (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`) is registered
    for redaction."""
    if isinstance(value, Mapping):
        return {
            k: interpolate_env(v, f"{key_path}.{k}" if key_path else str(k), sources=sources)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate_env(v, f"{key_path}.{i}", sources=sources) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if sources is not None:
            sources.setdefault(key_path, []).append(name)
        if name in os.environ:
            if name.upper().endswith(_SECRET_VARIABLE_SUFFIXES):
                SECRETS.register(os.environ[name])
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"config key {key_path!r} uses ${{{name}}}, but the environment variable "
            f"{name} is not set (set it, or write ${{{name}:-default}})"
        )

    return _ENV_PATTERN.sub(substitute, value)


def describe_validation_error(
    err: ValidationError, model: type[BaseModel], *, sources: EnvironmentSources | None = None
) -> str:
    """One line per problem, each naming the dotted key, what is wrong and what is allowed.

    The bad value is shown only when it is a short scalar; it is masked when it came from
    `${VAR}` (`sources`) or sits under a key field (api_key, token, password, ...). A mapping
    or list is described, never printed: a whole section can hold keys."""
    lines = []
    for problem in err.errors(include_url=False):
        location = [str(part) for part in problem["loc"]]
        key = ".".join(location)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, location[:-1])
            message = f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
        elif "input" in problem and problem["type"] not in _INPUT_NOT_SHOWN:
            message = f"{message} ({describe_value(problem['input'], key, sources or {})})"
        lines.append(SECRETS.redact(f"{key}: {message}" if key else message))
    return "; ".join(lines)


def describe_value(value: Any, key: str, sources: EnvironmentSources) -> str:
    """How an error shows the value of `key`: the value itself, or what kind of thing it is."""
    variables = [name for path, names in sources.items() if _within(path, key) for name in names]
    if variables:
        shown = ", ".join(f"${{{name}}}" for name in dict.fromkeys(variables))
        return f"got the value of {shown}, not shown"
    if isinstance(value, Mapping):
        return f"got a mapping with keys {', '.join(map(str, list(value)[:10]))}"
    if isinstance(value, list | tuple):
        return f"got a list of {len(value)} item(s)"
    if _is_secret_field(key):
        return "got a value, not shown for a key field"
    text = repr(value)
    return f"got {text}" if len(text) <= 80 else f"got a {type(value).__name__} of {len(text)} characters"


def _within(source_path: str, key: str) -> bool:
    """Whether the value at `source_path` is the value at `key`, or part of it or contains it."""
    return (
        source_path == key
        or source_path.startswith(key + ".")
        or key.startswith(source_path + ".")
        or not key
        or not source_path
    )


def _is_secret_field(key: str) -> bool:
    words = key.rsplit(".", 1)[-1].lower().replace("-", "_").split("_")
    return not _SECRET_FIELD_WORDS.isdisjoint(words)


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
