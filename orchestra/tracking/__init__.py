"""Tracking: every request, routing decision and consensus outcome, logged to MLflow."""

from orchestra.tracking.records import CallRecord, RequestRecord
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.tracker import RunHandle, RunStats, Tracker

__all__ = [
    "CallRecord",
    "RequestRecord",
    "RunHandle",
    "RunStats",
    "Tracker",
    "TrackingSettings",
    "load_tracking_settings",
]
