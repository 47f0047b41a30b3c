"""Tracking: every request, routing decision and consensus outcome, logged to MLflow."""

from orchestra.tracking.materialise import MaterialiseResult, materialise_traces
from orchestra.tracking.outcome import FlushResult, TrackingStatus
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.tracker import RunHandle, RunStats, Tracker

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
