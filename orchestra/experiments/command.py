"""`orchestra experiment status NAME`: an experiment's arms, estimate, SRM, guardrails and decision.

orchestra experiment status mixtral-canary --config config.yaml      # read back from MLflow
"""

from __future__ import annotations

from orchestra.config.loader import load_settings
from orchestra.experiments.readback import experiment_status
from orchestra.tracking.settings import load_tracking_settings


def status_main(name: str, *, config: str = "config.yaml", tracking_path: str | None = None) -> int:
    """Print the status of experiment `name` as logged to the config's tracking store."""
    settings = load_settings(config)
    tracking = load_tracking_settings(tracking_path, search_from=settings.base_dir)
    print(experiment_status(name, tracking=tracking, config=config))
    return 0
