"""The notebook dashboard on a real store holding a small sweep: the run picker, the provider
comparison and A/B tables, and the sweep monitor's per-arm progress (from the logged
`requests_done` metric)."""

from __future__ import annotations

import asyncio

import ipywidgets as widgets
import pytest
from mlflow.tracking import MlflowClient

from orchestra.app.dashboard import RunsDashboard, SweepMonitor
from orchestra.sweeps import run_sweep
from tests.test_sweeps import sweep_tracking, write_sweep


@pytest.fixture
def swept(tmp_path, empty_store_template):
    path = write_sweep(
        tmp_path,
        arms=[
            {"name": "gpt-4", "routing.rules": [{"providers": ["gpt-4"]}]},
            {"name": "mixtral", "routing.rules": [{"providers": ["mixtral-8x7b"]}]},
        ],
        limit=40,
    )
    tracking = sweep_tracking(tmp_path, empty_store_template)
    run_sweep(path, tracking=tracking, progress=False)
    return tracking


def test_sweep_monitor_shows_each_arm_finished(swept) -> None:
    tracking = swept
    monitor = SweepMonitor("test-sweep", tracking=tracking)
    table = monitor.refresh()
    assert table["arm"].to_list() == ["gpt-4,seed=0", "mixtral,seed=0"]
    assert table["status"].to_list() == ["FINISHED", "FINISHED"]
    assert table["done"].to_list() == [40, 40] and table["total"].to_list() == [40, 40]
    assert "2/2 arms finished" in monitor.header.value
    assert [bar.value for bar in monitor.bars.children] == [40, 40]
    assert asyncio.run(monitor.watch(interval_s=0.01)).height == 2  # returns at once: finished

    client = MlflowClient(tracking.tracking_uri)
    arm_run = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("sweeps").experiment_id])
        if r.info.run_name == "gpt-4,seed=0"
    )
    steps = [m.step for m in client.get_metric_history(arm_run.info.run_id, "requests_done")]
    assert sorted(steps) == list(range(2, 41, 2))  # logged along the way, ~20 steps

    unknown = SweepMonitor("no-such-sweep", tracking=tracking)
    assert unknown.refresh().height == 0 and "no sweep" in unknown.header.value


def test_runs_dashboard_compares_selected_runs(swept) -> None:
    tracking = swept
    dashboard = RunsDashboard(tracking=tracking)
    labels = dict(dashboard.runs.options)
    assert any(label.startswith("gpt-4,seed=0  [finished, 40 req]") for label in labels)
    assert not any(label.startswith("test-sweep") for label in labels)  # the parent run is not an arm
    by_name = {label.split(",")[0]: run_id for label, run_id in labels.items()}

    dashboard.select([by_name["gpt-4"]])
    assert dashboard.compare() is None
    assert "gpt-4" in dashboard.providers.value and "two or more runs" in dashboard.ab_table.value

    dashboard.select([by_name["gpt-4"], by_name["mixtral"]])
    table = dashboard.compare()
    assert (
        table is not None
        and set(table["arm_b"]) == {"mixtral,seed=0"}
        and set(table["arm_a"]) == {"gpt-4,seed=0"}
    )
    assert "quality" in set(table["metric"])
    assert (
        "mixtral-8x7b" in dashboard.providers.value and "80 requests from 2 run(s)" in dashboard.status.value
    )
    assert "paired" in dashboard.ab_table.value
    assert isinstance(dashboard.widget, widgets.VBox)
    dashboard.refresh()
    assert set(dashboard.runs.value) == {by_name["gpt-4"], by_name["mixtral"]}
