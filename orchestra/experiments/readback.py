"""An experiment read back from what was logged: its requests with their assignment, its status
(`orchestra experiment status NAME`), and off-policy values from the assignment probabilities.

    requests = experiment_requests(load_requests(tracking=tracking), "mixtral-canary")
    ab_report(requests.filter(pl.col("phase") == "running"), arm="arm", unit=None)
    status = experiment_status("mixtral-canary", tracking=tracking)
    arm_value(requests, "mixtral")           # IPS / SNIPS: the mean quality had every unit got mixtral

The status replays the logged requests, in the order they started, through the same monitor as
live traffic (the scorer, when one is configured, is applied again to the logged answers), with
the plan made at start (the experiment run's params); the decision is the one tagged on the
run when the experiment ended live.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from orchestra.config.experiments import ExperimentSettings
from orchestra.config.loader import load_settings
from orchestra.errors import AnalysisError, ConfigError
from orchestra.experiments.assignment import unit_key
from orchestra.experiments.monitor import Decision, Monitor, Observation
from orchestra.experiments.plan import Plan, plan_experiment
from orchestra.experiments.status import ExperimentStatus, status_from_monitor
from orchestra.improve.off_policy import OffPolicyEstimate, estimate
from orchestra.scoring.loading import Scorer, load_scorer
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import (
    EXPERIMENT_ARM_TAG,
    EXPERIMENT_ASSIGNED_TAG,
    EXPERIMENT_DECISION_TAG,
    EXPERIMENT_PHASE_TAG,
    EXPERIMENT_PROBABILITY_TAG,
    EXPERIMENT_TAG,
    KIND_TAG,
)

_FIELDS = {
    "experiment": EXPERIMENT_TAG,
    "arm": EXPERIMENT_ARM_TAG,
    "assigned_arm": EXPERIMENT_ASSIGNED_TAG,
    "assignment_probability": EXPERIMENT_PROBABILITY_TAG,
    "phase": EXPERIMENT_PHASE_TAG,
}


def experiment_requests(requests: pl.DataFrame, name: str) -> pl.DataFrame:
    """The logged requests of experiment `name`, with columns experiment, arm, assigned_arm,
    assignment_probability and phase (from the request tags), in the order they started."""
    if "tags_json" not in requests.columns:
        raise AnalysisError("the requests need their tags_json column (load_requests reads it by default)")
    tags = requests["tags_json"].map_elements(lambda text: json.loads(text or "{}"), return_dtype=pl.Object)
    columns = {
        column: pl.Series(column, [t.get(tag) for t in tags], dtype=pl.String)
        for column, tag in _FIELDS.items()
    }
    frame = requests.with_columns(*columns.values()).with_columns(
        pl.col("assignment_probability").cast(pl.Float64)
    )
    return frame.filter(pl.col("experiment") == name).sort("timestamp", maintain_order=True)


def arm_value(
    requests: pl.DataFrame, arm: str, *, metric: str = "quality", confidence: float = 0.95
) -> OffPolicyEstimate:
    """IPS and SNIPS estimates of the mean `metric` had every unit been served by `arm`, from
    the analysed requests and their assignment probabilities (`orchestra.improve.off_policy`)."""
    rows = requests.filter((pl.col("phase") == "running") & pl.col(metric).is_not_null())
    if rows.is_empty():
        raise AnalysisError("no analysed requests with a value of the metric")
    return estimate(
        rows[metric].to_numpy().astype(float),
        rows["assignment_probability"].to_numpy().astype(float),
        (rows["arm"] == arm).to_numpy(),
        target_support=np.ones(rows.height, dtype=bool),
        confidence=confidence,
    )


def experiment_status(
    name: str, *, tracking: TrackingSettings, config: str | Path | None = None
) -> ExperimentStatus:
    """The status of experiment `name` from its newest logged run (see the module docstring)."""
    from orchestra.tracking.reader import load_requests
    from orchestra.tracking.store import MlflowStore

    store = MlflowStore(tracking)
    runs = store.runs(f"tags.`{EXPERIMENT_TAG}` = '{name}'")
    parents = [r for r in runs if r["tags"].get(KIND_TAG) == "experiment"]
    if not parents:
        raise ConfigError(f"no experiment {name!r} is logged in {tracking.experiment!r}")
    parent = max(parents, key=lambda r: r["start_time"])
    settings = _settings(name, parent["params"], config)
    params = parent["params"]
    plan = plan_experiment(settings, sd=float(params["plan.sd"]), basis=params.get("plan.sd_basis", ""))
    plan = plan if settings.max_requests else _with_maximum(plan, int(params["plan.max_requests"]))
    arm_runs = [
        r["run_id"]
        for r in runs
        if r["tags"].get(KIND_TAG) == "experiment-arm"
        and r["tags"].get("mlflow.parentRunId") == parent["run_id"]
    ]
    requests = (
        experiment_requests(load_requests(run_ids=arm_runs, tracking=tracking), name) if arm_runs else None
    )
    monitor = replay_requests(settings, plan, requests, scorer=load_scorer(settings.scorer))
    details = {"run": parent["run_id"]}
    outcome = parent["tags"].get(EXPERIMENT_DECISION_TAG)
    status = status_from_monitor(name, monitor, details)
    if outcome:
        decided = Decision(
            outcome,  # type: ignore[arg-type]
            parent["tags"].get(f"{EXPERIMENT_DECISION_TAG}.arm") or None,
            parent["tags"].get(f"{EXPERIMENT_DECISION_TAG}.reason", ""),
            monitor.decision.total if monitor.decision else monitor.total,
        )
        status = ExperimentStatus(
            status.name, status.primary, status.plan, status.arms, status.look, decided, details
        )
    return status


def replay_requests(
    settings: ExperimentSettings, plan: Plan, requests: pl.DataFrame | None, *, scorer: Scorer | None = None
) -> Monitor:
    """A monitor fed with logged experiment requests (as `experiment_requests` returns them)."""
    monitor = Monitor(settings, plan)
    if requests is None:
        return monitor
    for row in requests.iter_rows(named=True):
        if row["phase"] == "ended" or monitor.decision is not None:
            continue
        if settings.unit == "request":
            unit = row["request_id"]
        else:
            unit = unit_key(settings.unit, row.get("user_id"), row.get("session_id"))
        if unit is None or row["assigned_arm"] not in monitor.arms:
            continue  # no unit: never assigned
        monitor.assigned(row["assigned_arm"], unit)
        if row["phase"] != "running":
            continue
        failed = row.get("status") != "ok"
        quality = row.get("quality")
        if scorer is not None and not failed:
            quality = scorer(row["prompt"], row.get("response") or "")
        latency = float(row.get("latency_ms") or 0.0)
        observation = Observation(
            quality, float(row.get("cost_usd") or 0.0), float("nan") if failed else latency, failed
        )
        monitor.record(row["arm"], observation)
        if monitor.due():
            monitor.look()
    return monitor


def _settings(name: str, params: dict[str, str], config: str | Path | None) -> ExperimentSettings:
    if config is not None:
        configured = load_settings(config).experiments
        if name in configured:
            return configured[name]
    if "experiment.spec" in params:
        return ExperimentSettings.model_validate_json(params["experiment.spec"])
    raise ConfigError(f"experiment {name!r}: its settings are neither in the config nor on its run")


def _with_maximum(plan: Plan, maximum: int) -> Plan:
    return replace(plan, max_requests=maximum)
