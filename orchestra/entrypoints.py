"""Loading plugins from installed packages' entry points; a broken one is reported and skipped.

[project.entry-points."orchestra.consensus_strategies"]
longest = "my_package.consensus:LongestAnswer"

found, errors = discover("orchestra.consensus_strategies", ConsensusStrategy)

This module knows no kind of plugin: each kind's registry names its own group and loads it
(`providers.registry.CONNECTORS_GROUP`, `consensus.manager.STRATEGIES_GROUP`,
`routing.factory.EVALUATORS_GROUP`, `routing.router.ROUTERS_GROUP`,
`metrics.COLLECTORS_GROUP`); `orchestra plugins` (`app/plugins.py`) lists them all.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from orchestra.logs import get_logger

logger = get_logger("orchestra.entrypoints")


@dataclass(frozen=True)
class PluginError:
    group: str
    name: str
    error: str


@dataclass(frozen=True)
class PluginInfo:
    """One discovered entry point, for `orchestra plugins`."""

    group: str
    name: str
    target: str
    distribution: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _entries(group: str) -> tuple[EntryPoint, ...]:
    """The group's entry points; the scan of installed packages is done once per `sys.path`."""
    return _scan(group, tuple(sys.path))


@functools.lru_cache(maxsize=64)
def _scan(group: str, path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=group))


def discover(
    group: str, expected: type | None = None, *, instantiate: bool = True
) -> tuple[dict[str, Any], list[PluginError]]:
    """Load every entry point of `group`: with `instantiate`, classes and factories are called
    with no arguments and the result must be an `expected`; without, the loaded object must be
    callable (a factory)."""
    found: dict[str, Any] = {}
    errors: list[PluginError] = []
    for entry in _entries(group):
        try:
            found[entry.name] = _load(entry, expected, instantiate)
        except Exception as err:  # a broken plugin must never break start-up
            errors.append(PluginError(group, entry.name, f"{type(err).__name__}: {err}"))
            logger.warning("skipping plugin %r of %s: %s: %s", entry.name, group, type(err).__name__, err)
    return found, errors


def _load(entry: EntryPoint, expected: type | None, instantiate: bool) -> Any:
    plugin = entry.load()
    if not instantiate:
        if not callable(plugin):
            raise TypeError(f"{entry.value} is a {type(plugin).__name__}, not a factory")
        return plugin
    if isinstance(plugin, type) or (
        expected is not None and not isinstance(plugin, expected) and callable(plugin)
    ):
        plugin = plugin()  # a class or a factory
    if expected is not None and not isinstance(plugin, expected):
        raise TypeError(f"{entry.value} gave {type(plugin).__name__}, not a {expected.__name__}")
    return plugin


def inspect_group(group: str, expected: type | None, *, instantiate: bool = True) -> list[PluginInfo]:
    """Every entry point of `group`, loaded (and checked) the way its registry loads it."""
    rows: list[PluginInfo] = []
    for entry in _entries(group):
        error = None
        try:
            _load(entry, expected, instantiate)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
        distribution = entry.dist.name if entry.dist is not None else "?"
        rows.append(PluginInfo(group, entry.name, entry.value, distribution, error))
    return rows
