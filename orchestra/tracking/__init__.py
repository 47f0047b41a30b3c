"""Tracking: every request, routing decision and consensus outcome, logged to MLflow."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.tracking.materialise import MaterialiseResult, materialise_traces
    from orchestra.tracking.outcome import FlushResult, TrackingStatus
    from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
    from orchestra.tracking.tracker import RunHandle, RunStats, Tracker
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.tracking.materialise": ["MaterialiseResult", "materialise_traces"],
            "orchestra.tracking.outcome": ["FlushResult", "TrackingStatus"],
            "orchestra.tracking.settings": ["TrackingSettings", "load_tracking_settings"],
            "orchestra.tracking.tracker": ["RunHandle", "RunStats", "Tracker"],
        },
    )

__all__ = [
    "FlushResult",
    "MaterialiseResult",
    "RunHandle",
    "RunStats",
    "Tracker",
    "TrackingSettings",
    "TrackingStatus",
    "load_tracking_settings",
    "materialise_traces",
]
