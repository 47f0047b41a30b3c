"""A small ipywidgets dashboard for notebooks: pick runs, compare providers and arms, watch a sweep.

from orchestra.app.dashboard import RunsDashboard, SweepMonitor
RunsDashboard(tracking="../mlflow.yaml")          # select runs, press Compare
monitor = SweepMonitor("alpacaeval-routing", tracking="../mlflow.yaml")
monitor                                           # one progress bar per arm
await monitor.watch()                             # refreshes until every arm has finished
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from orchestra.analysis.ab.report import ab_report
from orchestra.analysis.performance import provider_comparison
from orchestra.analysis.requests import load_requests
from orchestra.errors import AnalysisError
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tags import KIND_TAG, SUPERSEDED_TAG


def _settings(tracking: TrackingSettings | str | Path | None) -> TrackingSettings:
    return tracking if isinstance(tracking, TrackingSettings) else load_tracking_settings(tracking)


def _html_table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


class RunsDashboard:
    """Pick runs of the experiment; Compare shows the provider comparison and the A/B table
    (paired by prompt when the runs answered the same prompts; the first selected is control)."""

    def __init__(self, tracking: TrackingSettings | str | Path | None = None) -> None:
        self.tracking = _settings(tracking)
        self.store = MlflowStore(self.tracking)
        self.runs = widgets.SelectMultiple(description="runs", rows=8, layout=widgets.Layout(width="60%"))
        self.refresh_button = widgets.Button(description="Refresh runs")
        self.compare_button = widgets.Button(description="Compare", button_style="primary")
        self.status = widgets.HTML()
        self.providers = widgets.HTML()
        self.ab_table = widgets.HTML()
        self.refresh_button.on_click(lambda _: self.refresh())
        self.compare_button.on_click(lambda _: self.compare())
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.runs, widgets.VBox([self.refresh_button, self.compare_button])]),
                self.status,
                widgets.HTML("<b>Providers</b>"),
                self.providers,
                widgets.HTML("<b>A/B (first selected run is the control)</b>"),
                self.ab_table,
            ]
        )
        self.refresh()

    def refresh(self) -> None:
        """Reload the run list (newest first), keeping the selection where possible."""
        selected = set(self.runs.value)
        runs = [r for r in self.store.runs() if r["tags"].get(KIND_TAG) != "sweep"]
        self.runs.options = [
            (f"{r['name']}  [{r['status'].lower()}, {int(r['metrics'].get('requests', 0))} req]", r["run_id"])
            for r in runs
        ]
        self.runs.value = tuple(run_id for _, run_id in self.runs.options if run_id in selected)

    def select(self, run_ids: list[str]) -> None:
        self.runs.value = tuple(run_ids)

    def compare(self) -> pl.DataFrame | None:
        """Fill the two tables for the selected runs; returns the A/B table (None if < 2 runs)."""
        run_ids = list(self.runs.value)
        if not run_ids:
            self.status.value = "<i>select at least one run</i>"
            return None
        requests = load_requests(run_ids=run_ids, tracking=self.tracking)
        comparison = provider_comparison(requests)
        rows = [{"provider": name, **values} for name, values in comparison.items()]
        self.providers.value = _html_table(pl.DataFrame(rows)) if rows else "<i>no calls logged</i>"
        self.status.value = f"{requests.height} requests from {len(run_ids)} run(s)"
        if len(run_ids) < 2:
            self.ab_table.value = "<i>select two or more runs for the A/B table</i>"
            return None
        names = dict(zip(requests["run_id"], requests["run_name"], strict=False))
        control = names.get(run_ids[0])
        try:
            report = ab_report(requests, arm="run_name", unit="prompt", control=control)
        except AnalysisError as err:
            self.ab_table.value = f"<i>{html.escape(str(err))}</i>"
            return None
        self.ab_table.value = report._repr_html_()
        return report.table

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class SweepMonitor:
    """One progress bar per arm of a sweep (by name or parent run id), from what is logged."""

    def __init__(self, sweep: str, tracking: TrackingSettings | str | Path | None = None) -> None:
        self.tracking = _settings(tracking)
        self.store = MlflowStore(self.tracking)
        self.sweep = sweep
        self.header = widgets.HTML()
        self.bars = widgets.VBox()
        self.widget = widgets.VBox([self.header, self.bars])
        self._bars: dict[str, widgets.IntProgress] = {}
        self._status: str | None = None  # the parent run's status as of the last refresh
        self.refresh()

    def _parent(self) -> dict[str, Any] | None:
        parents = [
            r
            for r in self.store.runs(f"tags.`{KIND_TAG}` = 'sweep'")
            if r["name"] == self.sweep or r["run_id"] == self.sweep
        ]
        return parents[0] if parents else None

    def refresh(self) -> pl.DataFrame:
        """Arm, status, requests done and expected; the bars follow."""
        parent = self._parent()
        self._status = None if parent is None else parent["status"]
        if parent is None:
            self._bars, self.bars.children = {}, ()
            self.header.value = f"<i>no sweep {html.escape(self.sweep)!s} logged yet</i>"
            return pl.DataFrame(
                schema={"arm": pl.String, "status": pl.String, "done": pl.Int64, "total": pl.Int64}
            )
        total = int(parent["params"].get("sweep.prompts", 0))
        arms = int(parent["params"].get("sweep.arms", 0))
        children = [
            r
            for r in self.store.runs(f"tags.`mlflow.parentRunId` = '{parent['run_id']}'")
            if r["tags"].get(SUPERSEDED_TAG) != "true"
        ]
        rows = []
        bars: dict[str, widgets.IntProgress] = {}
        for run in sorted(children, key=lambda r: r["start_time"]):
            done = total if run["status"] == "FINISHED" else int(run["metrics"].get("requests_done", 0))
            rows.append((run["name"], run["status"], done, total))
            bar = self._bars.get(run["run_id"])
            if bar is None:
                bar = widgets.IntProgress(min=0, description=run["name"][:18])
            bar.max, bar.value = max(total, 1), done
            bar.bar_style = {"FINISHED": "success", "FAILED": "danger", "KILLED": "danger"}.get(
                run["status"], "info"
            )
            bars[run["run_id"]] = bar
        self._bars = bars  # the current arms only: a superseded attempt's bar goes
        self.bars.children = tuple(bars.values())
        finished = sum(1 for _, status, _, _ in rows if status == "FINISHED")
        self.header.value = (
            f"<b>{html.escape(parent['name'])}</b>: {finished}/{arms} arms finished, "
            f"sweep {parent['status'].lower()} (updated {datetime.now(UTC):%H:%M:%S} UTC)"
        )
        return pl.DataFrame(
            rows,
            schema={"arm": pl.String, "status": pl.String, "done": pl.Int64, "total": pl.Int64},
            orient="row",
        )

    @property
    def finished(self) -> bool:
        """Whether the sweep had finished at the last `refresh` (the table is as of then too)."""
        return self._status == "FINISHED"

    async def watch(self, interval_s: float = 2.0, timeout_s: float | None = None) -> pl.DataFrame:
        """Refresh every `interval_s` until the sweep has finished (or `timeout_s` passed)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while True:
            table = await asyncio.to_thread(self.refresh)
            if self.finished or (deadline is not None and loop.time() >= deadline):
                return table
            await asyncio.sleep(interval_s)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
