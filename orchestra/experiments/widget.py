"""A notebook widget for an experiment: arms, the always-valid estimate, SRM, guardrails and the
decision, refreshed on demand (ipywidgets).

    ExperimentWidget(experiment)                                   # a live experiment
    ExperimentWidget("mixtral-canary", tracking="mlflow.yaml")     # read back from MLflow
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as widgets

from orchestra.experiments.experiment import Experiment
from orchestra.experiments.readback import experiment_status
from orchestra.experiments.status import ExperimentStatus
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings


class ExperimentWidget:
    """The status of a live experiment, or of one logged to the tracking store, with a Refresh button."""

    def __init__(
        self,
        source: Experiment | str,
        *,
        tracking: TrackingSettings | str | Path | None = None,
        config: str | Path | None = None,
    ) -> None:
        self.source = source
        self.config = config
        self.tracking = (
            None
            if isinstance(source, Experiment)
            else tracking
            if isinstance(tracking, TrackingSettings)
            else load_tracking_settings(tracking)
        )
        self.view = widgets.HTML()
        self.button = widgets.Button(description="Refresh")
        self.button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox([self.button, self.view])
        self.refresh()

    def status(self) -> ExperimentStatus:
        if isinstance(self.source, Experiment):
            return self.source.status()
        assert self.tracking is not None
        return experiment_status(self.source, tracking=self.tracking, config=self.config)

    def refresh(self) -> ExperimentStatus:
        """Show the current status (and return it)."""
        status = self.status()
        self.view.value = status._repr_html_()
        return status

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
