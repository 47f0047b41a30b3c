"""`orchestra plugins`: every plugin installed packages provide, per kind, and which are broken.

    print(format_inventory(inventory()))

Each kind's registry owns its entry-point group; this listing asks each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.consensus.base import ConsensusStrategy
from orchestra.consensus.manager import STRATEGIES_GROUP
from orchestra.entrypoints import PluginInfo, inspect_group
from orchestra.metrics import COLLECTORS_GROUP, MetricsCollector
from orchestra.providers.registry import CONNECTORS_GROUP
from orchestra.routing.complexity import ComplexityEvaluator
from orchestra.routing.factory import EVALUATORS_GROUP
from orchestra.routing.router import ROUTERS_GROUP
from orchestra.routing.strategies import RoutingStrategy


@dataclass(frozen=True)
class PluginKind:
    """One kind of plugin: its key in the listing, its group, what its plugins must produce
    (None: a factory, called later with arguments)."""

    key: str
    group: str
    expected: type | None


KINDS = (
    PluginKind("connectors", CONNECTORS_GROUP, None),
    PluginKind("consensus", STRATEGIES_GROUP, ConsensusStrategy),
    PluginKind("evaluators", EVALUATORS_GROUP, ComplexityEvaluator),
    PluginKind("routers", ROUTERS_GROUP, RoutingStrategy),
    PluginKind("metrics", COLLECTORS_GROUP, MetricsCollector),
)
GROUPS = {kind.key: kind.group for kind in KINDS}


def inventory() -> list[PluginInfo]:
    """Every entry point of every kind, loaded (and checked) the way orchestra will load it."""
    return [
        row
        for kind in KINDS
        for row in inspect_group(kind.group, kind.expected, instantiate=kind.expected is not None)
    ]


def format_inventory(rows: list[PluginInfo]) -> str:
    """The `orchestra plugins` listing: per kind, each plugin with its package and status."""
    lines: list[str] = []
    for kind in KINDS:
        members = [row for row in rows if row.group == kind.group]
        lines.append(f"{kind.key} ({kind.group}): {len(members) or 'none'}")
        for row in members:
            status = "ok" if row.ok else f"BROKEN, skipped: {row.error}"
            lines.append(f"  {row.name:<20} {row.target}  [{row.distribution}]  {status}")
    return "\n".join(lines)
