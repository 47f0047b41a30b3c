"""Notebook rendering: objects a researcher looks at in Jupyter show as HTML tables."""

from __future__ import annotations

import re

import polars as pl

from orchestra import FunctionConnector, Orchestra, TrackingSettings
from orchestra.analysis.winrate import length_controlled_win_rate, win_rate
from orchestra.display import fields_html, table_html
from orchestra.sweeps.arms import summarize_outcomes
from orchestra.sweeps.runner import SweepSummary
from tests.conftest import alpaca_config


def test_an_orchestra_shows_its_providers_prices_and_rules():
    orch = Orchestra(alpaca_config(), tracking=TrackingSettings(enabled=False))
    try:
        orch.model_registry.register_connector("scripted", FunctionConnector("scripted", lambda r: "ok"))
        page = orch._repr_html_()
    finally:
        orch.close()
    assert page.count("<table") == 3
    cells = re.findall(r"<td>(.*?)</td>", page)
    gpt4 = cells.index("gpt-4")
    assert cells[gpt4 : gpt4 + 5] == ["gpt-4", "replay", "gpt4", "30", "60"]
    assert cells[gpt4 + 5].startswith("genai-prices") and "Routing rules" in page
    scripted = cells.index("scripted")
    assert cells[scripted + 3 : scripted + 6] == ["", "", ""]  # no price table, no price


def test_tables_escape_markup_and_mask_secrets():
    page = table_html([{"name": "<script>x</script>", "uri": "postgresql://me:hunter2pw@db/orchestra"}])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "hunter2pw" not in page


def test_win_rates_summaries_and_sweeps_render_as_tables():
    assert "<td>75</td>" in win_rate([1.0, 0.5, 1.0, 0.5])._repr_html_()
    controlled = length_controlled_win_rate([1, 0, 1, 0, 1, 1], [10, 20, 30, 40, 50, 60], [30] * 6)
    assert "length-controlled" in controlled._repr_html_()
    outcome = {
        "metadata": {
            "quality": 1.0,
            "answered_by": "a",
            "cost_usd": 0.5,
            "latency_ms": 10.0,
            "providers_called": ["a"],
        }
    }
    summary = summarize_outcomes([outcome, None])
    cells = re.findall(r"<td>(.*?)</td>", summary._repr_html_())
    assert cells[cells.index("errors") + 1] == "1"
    sweep = SweepSummary("s", "run-1", pl.DataFrame({"arm": ["x"], "win_rate": [50.0]}), skipped=["y"])
    page = sweep._repr_html_()
    assert "<table" in page and "Skipped, already complete: y" in page
    assert re.findall(r"<th>(.*?)</th>", fields_html({"a": 1})) == ["field", "value"]
