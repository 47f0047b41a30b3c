"""Profiles of `mlflow.yaml`: named sets of tracking settings, one of them chosen per process.

    experiment: orchestra            # keys outside `profiles` are shared by every profile
    profile: local                   # the default profile
    profiles:
      local: {tracking_uri: "sqlite:///mlruns/mlflow.db", artifact_location: mlruns/artifacts}
      team:  {tracking_uri: "http://mlflow.internal:5000", artifact_location: null}

    select_profile(raw, "team", origin="mlflow.yaml")   # shared keys, then the team profile's

A profile's values may name environment variables (`${MLFLOW_DB_PASSWORD}`), so that a password
of a store reached directly stays out of the file; only the chosen profile is interpolated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestra.config.loader import interpolate_env
from orchestra.errors import ConfigError

PROFILE_VARIABLE = "ORCHESTRA_PROFILE"
"""The environment variable naming the profile (the CLI's `--profile` sets it for the command)."""


def select_profile(raw: Mapping[str, Any], chosen: str | None, *, origin: str) -> dict[str, Any]:
    """The settings of profile `chosen` (else the file's `profile:`): the shared keys of `raw`
    with the profile's keys over them. A file without `profiles` is one unnamed profile."""
    settings = dict(raw)
    profiles = settings.pop("profiles", None)
    default = settings.pop("profile", None)
    name = chosen or default
    if profiles is None:
        if name is not None:
            raise ConfigError(
                f"{origin}: profile {name!r} was asked for, but the file defines no `profiles:` "
                f"(choose one with --profile or {PROFILE_VARIABLE} only when it does)"
            )
        return settings
    if not isinstance(profiles, Mapping) or not all(
        isinstance(value, Mapping | None) for value in profiles.values()
    ):
        raise ConfigError(f"{origin}: profiles must map each profile name to its settings")
    if name is None:
        return settings
    if name not in profiles:
        known = ", ".join(sorted(map(str, profiles))) or "none"
        raise ConfigError(f"{origin}: no profile {name!r} (profiles: {known})")
    selected = interpolate_env(dict(profiles[name] or {}), f"profiles.{name}")
    return {**settings, **selected}
