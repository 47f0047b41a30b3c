"""The MLflow tags orchestra puts on its runs, named once so writers and searches agree.

store.runs(f"tags.`{KIND_TAG}` = 'sweep'")
"""

from __future__ import annotations

from orchestra.tracking.store import RUN_KEY_TAG

KIND_TAG = "orchestra.kind"
"""What a run is: run, session, demo, demo-arm, sweep, sweep-arm, explore, improve, experiment,
experiment-arm."""
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
EXPERIMENT_TAG = "orchestra.experiment"
"""On an experiment's runs and on each of its requests (request tags): the experiment's name."""
EXPERIMENT_ARM_TAG = "orchestra.experiment.arm"
"""On a request: the arm that served it; on an arm's run: that arm."""
EXPERIMENT_ASSIGNED_TAG = "orchestra.experiment.assigned"
"""On a request: the arm its unit is assigned to (differs from the arm once that arm stopped)."""
EXPERIMENT_PROBABILITY_TAG = "orchestra.experiment.probability"
"""On a request: the probability of its assignment (the arm's share), for off-policy estimates."""
EXPERIMENT_PHASE_TAG = "orchestra.experiment.phase"
"""On a request: running (analysed), excluded (no unit, or the arm stopped), or ended."""
EXPERIMENT_DECISION_TAG = "orchestra.experiment.decision"
"""On an experiment's run once it ended: promote, stop or inconclusive."""

__all__ = [
    "ARM_TAG",
    "EXPERIMENT_ARM_TAG",
    "EXPERIMENT_ASSIGNED_TAG",
    "EXPERIMENT_DECISION_TAG",
    "EXPERIMENT_PHASE_TAG",
    "EXPERIMENT_PROBABILITY_TAG",
    "EXPERIMENT_TAG",
    "KIND_TAG",
    "LEASE_TAG_PREFIX",
    "RECOVERED_TAG",
    "RUN_KEY_TAG",
    "SUPERSEDED_TAG",
    "SWEEP_TAG",
]
