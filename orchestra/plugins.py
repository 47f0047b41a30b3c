"""Plugins from installed packages, through entry-point groups; a broken one is reported and skipped.

[project.entry-points."orchestra.consensus_strategies"]
longest = "my_package.consensus:LongestAnswer"

found, errors = discover("orchestra.consensus_strategies")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

logger = logging.getLogger("orchestra.plugins")

GROUPS = {
    "connectors": "orchestra.connectors",
    "consensus": "orchestra.consensus_strategies",
    "evaluators": "orchestra.complexity_evaluators",
    "routers": "orchestra.routers",
    "metrics": "orchestra.metrics_collectors",
}


@dataclass(frozen=True)
class PluginError:
    group: str
    name: str
    error: str


def discover(group: str, expected: type | None = None) -> tuple[dict[str, Any], list[PluginError]]:
    """Load every entry point of `group`: classes and factories are called with no arguments."""
    found: dict[str, Any] = {}
    errors: list[PluginError] = []
    for entry in entry_points(group=group):
        try:
            plugin = entry.load()
            if isinstance(plugin, type) or (
                expected is not None and not isinstance(plugin, expected) and callable(plugin)
            ):
                plugin = plugin()  # a class or a factory
            if expected is not None and not isinstance(plugin, expected):
                raise TypeError(f"{entry.value} gave {type(plugin).__name__}, not a {expected.__name__}")
        except Exception as err:  # a broken plugin must never break start-up
            errors.append(PluginError(group, entry.name, f"{type(err).__name__}: {err}"))
            logger.warning("skipping plugin %r of %s: %s: %s", entry.name, group, type(err).__name__, err)
            continue
        found[entry.name] = plugin
    return found, errors
