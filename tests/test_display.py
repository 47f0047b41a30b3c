"""Notebook rendering: objects a researcher looks at in Jupyter show as HTML tables."""

from __future__ import annotations

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
    assert page.count("<table>") == 3
    assert "<td>gpt-4</td><td>replay</td><td>gpt4</td><td>30</td><td>60</td>" in page
    assert "genai-prices" in page and "Routing rules" in page
    assert "<td>scripted</td>" in page  # a connector without a price table shows no price


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
    assert "<td>errors</td><td>1</td>" in summary._repr_html_()
    sweep = SweepSummary("s", "run-1", pl.DataFrame({"arm": ["x"], "win_rate": [50.0]}), skipped=["y"])
    page = sweep._repr_html_()
    assert "<table" in page and "Skipped, already complete: y" in page
    assert "<td>field</td>" not in fields_html({"a": 1})  # header cells are th
