"""Rich HTML for Jupyter: small tables where a notebook would otherwise print a dict or a repr.

orch                   # an `Orchestra` in a cell: its providers, prices, routing, tracking
table_html([{"model": "gpt-4", "price": 30.0}], caption="Prices")
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

from orchestra.redact import SECRETS

if TYPE_CHECKING:
    from orchestra.engine.orchestrator import Orchestra


def table_html(rows: Iterable[Mapping[str, Any]], caption: str | None = None) -> str:
    """One HTML table (pandas' `to_html`, escaped): a column per key in first-seen order, a row
    per mapping; secrets in any cell are masked."""
    import pandas as pd

    rows = list(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    frame = pd.DataFrame([[_text(row.get(c)) for c in columns] for row in rows], columns=columns)
    title = f"<p><b>{html.escape(caption)}</b></p>" if caption else ""
    return SECRETS.redact(title + frame.to_html(index=False, border=0))


def fields_html(values: Mapping[str, Any] | Any, caption: str | None = None) -> str:
    """A two-column (field, value) table of a mapping or a dataclass."""
    if is_dataclass(values) and not isinstance(values, type):
        values = {f.name: getattr(values, f.name) for f in fields(values)}
    return table_html(({"field": k, "value": v} for k, v in values.items()), caption)


def orchestra_html(orch: Orchestra) -> str:
    """An `Orchestra` at a glance: providers with their prices, routing rules, consensus, tracking."""
    settings = orch.settings
    providers = []
    for connector in orch.model_registry:
        price = getattr(connector, "price", None)
        providers.append(
            {
                "provider": connector.name,
                "type": connector.provider_type.value,
                "model": ", ".join(connector.get_supported_models()),
                "$ / 1M in": None if price is None else price.input_per_1m,
                "$ / 1M out": None if price is None else price.output_per_1m,
                "price source": ("unknown" if price is None else price.source)
                if hasattr(connector, "price")
                else "",
            }
        )
    rules = [
        {
            "task type": rule.task_type,
            "complexity": getattr(rule.complexity, "value", rule.complexity),
            "providers": ", ".join(rule.providers),
            "consensus": rule.require_consensus,
        }
        for rule in settings.routing.rules
    ]
    tracking = orch.tracking_settings
    overview = {
        "routing strategy": settings.routing.default_strategy,
        "consensus": settings.consensus.default_strategy,
        "tracking": tracking.tracking_uri if tracking.enabled else "off",
        "experiment": getattr(tracking, "experiment", ""),
        "response cache": "on" if orch.settings.performance.enable_response_caching else "off",
    }
    return "".join(
        [
            fields_html(overview, caption=f"Orchestra: {settings.framework.name}"),
            table_html(providers, caption="Providers") if providers else "<p>No providers.</p>",
            table_html(rules, caption="Routing rules (first match wins)") if rules else "",
        ]
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)
