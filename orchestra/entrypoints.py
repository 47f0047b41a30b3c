"""Plugins from installed packages, through entry-point groups; a broken one is reported and skipped.

[project.entry-points."orchestra.consensus_strategies"]
longest = "my_package.consensus:LongestAnswer"

found, errors = discover("orchestra.consensus_strategies")

Groups: connectors (a factory `(name, ProviderSettings, BuildContext) -> BaseModelConnector`,
used by `models.<name>.plugin`), consensus strategies, complexity evaluators, routers (routing
strategies) and metrics collectors (classes or factories called with no arguments).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from orchestra.logs import get_logger

logger = get_logger("orchestra.plugins")

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


def expected_types() -> dict[str, type | None]:
    """Group -> the type its plugins must produce (None: connectors are factories)."""
    from orchestra.consensus.base import ConsensusStrategy
    from orchestra.metrics import MetricsCollector
    from orchestra.routing.complexity import ComplexityEvaluator
    from orchestra.routing.strategies import RoutingStrategy

    return {
        GROUPS["connectors"]: None,
        GROUPS["consensus"]: ConsensusStrategy,
        GROUPS["evaluators"]: ComplexityEvaluator,
        GROUPS["routers"]: RoutingStrategy,
        GROUPS["metrics"]: MetricsCollector,
    }


def inventory() -> list[PluginInfo]:
    """Every entry point of every group, loaded (and checked) the way orchestra will load it."""
    rows: list[PluginInfo] = []
    for group, expected in expected_types().items():
        for entry in _entries(group):
            error = None
            try:
                _load(entry, expected, instantiate=expected is not None)
            except Exception as err:
                error = f"{type(err).__name__}: {err}"
            distribution = entry.dist.name if entry.dist is not None else "?"
            rows.append(PluginInfo(group, entry.name, entry.value, distribution, error))
    return rows


def format_inventory(rows: list[PluginInfo]) -> str:
    """The `orchestra plugins` listing: per group, each plugin with its package and status."""
    lines: list[str] = []
    for key, group in GROUPS.items():
        members = [row for row in rows if row.group == group]
        lines.append(f"{key} ({group}): {len(members) or 'none'}")
        for row in members:
            status = "ok" if row.ok else f"BROKEN, skipped: {row.error}"
            lines.append(f"  {row.name:<20} {row.target}  [{row.distribution}]  {status}")
    return "\n".join(lines)
