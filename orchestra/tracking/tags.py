"""The MLflow tags orchestra puts on its runs, named once so writers and searches agree.

store.runs(f"tags.`{KIND_TAG}` = 'sweep'")
"""

from __future__ import annotations

from orchestra.tracking.store import RUN_KEY_TAG

KIND_TAG = "orchestra.kind"
"""What a run is: run, session, demo, demo-arm, sweep, sweep-arm, explore, improve."""
SWEEP_TAG = "orchestra.sweep_id"
"""The identity of the sweep a parent run or arm run belongs to."""
ARM_TAG = "orchestra.arm_id"
"""The arm a sweep-arm run ran."""
SUPERSEDED_TAG = "orchestra.superseded"
"""'true' on an interrupted arm run that was (or will be) run again."""
RECOVERED_TAG = "orchestra.recovered_records"
"""On a run whose process died: how many of its records were recovered from its journal."""
LEASE_TAG_PREFIX = "orchestra.lease."
"""Experiment tags holding a lease (owner and heartbeat) on a tracking server."""

__all__ = [
    "ARM_TAG",
    "KIND_TAG",
    "LEASE_TAG_PREFIX",
    "RECOVERED_TAG",
    "RUN_KEY_TAG",
    "SUPERSEDED_TAG",
    "SWEEP_TAG",
]
