"""A write-back (or rollback) as an MLflow run: the evidence, the policy and the configs.

    run_id = log_change(tracking, change, report)      # None when tracking is off or fails
    run_id = log_config_change(tracking, change, params=..., metrics=..., evidence=..., kind="experiment")

The run (tag `orchestra.kind = improve-write-back`) holds the decision's numbers as metrics and
params, and as artifacts: `evidence.json`, the new and the previous config, the diff, and the
policy folder the new config uses. Logging never undoes a write-back: when the store fails, the
versions folder still holds the previous config and the evidence, and a warning says so.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

from orchestra.improve.report import ImprovementReport
from orchestra.improve.versions import ConfigChange
from orchestra.logs import get_logger
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG

logger = get_logger("orchestra.improve")


def log_change(
    tracking: TrackingSettings | None, change: ConfigChange, report: ImprovementReport | None = None
) -> str | None:
    """Log `change` (with `report`'s evidence, for a write-back) as a finished MLflow run."""
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    evidence = report.evidence() if report is not None else {}
    if report is not None:
        params |= {"status": report.status, "reason": report.reason[:500]}
        if report.candidate is not None:
            params |= {"candidate": report.candidate.describe(), "target": str(report.candidate.pick.target)}
        metrics |= {f"confirm.{k}": v for k, v in evidence.get("confirm", {}).items() if _number(v)}
        metrics |= {f"power.{k}": float(v) for k, v in evidence["power"].items() if _number(v)}
    policy = report.policy_dir if report is not None else None
    return log_config_change(
        tracking, change, params=params, metrics=metrics, evidence=evidence, folders={"policy": policy}
    )


def log_config_change(
    tracking: TrackingSettings | None,
    change: ConfigChange,
    *,
    params: dict[str, str],
    metrics: dict[str, float],
    evidence: dict[str, Any],
    folders: dict[str, Path | None] | None = None,
    kind: str = "improve",
) -> str | None:
    """Log any config change as a finished run (tag `orchestra.kind` = `<kind>-<action>`): the
    params and metrics, and as artifacts the evidence, the diff, both configs and each folder of
    `folders` (artifact path -> local folder). None when tracking is off or the store fails."""
    if tracking is None or not tracking.enabled:
        return None
    try:
        from orchestra.tracking.store import MlflowStore

        store = MlflowStore(tracking)
        base_params = {"action": change.action, "config": change.config.name, "kept_as": change.previous.name}
        run_id = store.create_run(
            f"{kind}: {change.action}",
            run_key=uuid.uuid4().hex,
            params=base_params | params,
            tags={KIND_TAG: f"{kind}-{change.action}"},
        )
        with tempfile.TemporaryDirectory(prefix="orchestra-improve-") as folder:
            base = Path(folder)
            (base / "evidence.json").write_text(json.dumps(evidence, indent=1, default=str), encoding="utf-8")
            (base / "config.diff").write_text(change.diff, encoding="utf-8")
            (base / "config.yaml").write_text(change.config.read_text(encoding="utf-8"), encoding="utf-8")
            (base / "previous_config.yaml").write_text(change.previous.read_text(encoding="utf-8"), "utf-8")
            for name in ("evidence.json", "config.diff", "config.yaml", "previous_config.yaml"):
                store.log_artifact_file(run_id, base / name, kind)
        for artifact_dir, source in (folders or {}).items():
            if source is not None and source.is_dir():
                for file in sorted(source.rglob("*")):
                    if file.is_file():
                        relative = file.relative_to(source).parent.as_posix()
                        store.log_artifact_file(run_id, file, f"{artifact_dir}/{relative}".rstrip("/."))
        store.end_run(run_id, metrics, "FINISHED", None)
        return run_id
    except Exception as err:  # provenance must not undo the change: the versions folder holds it
        logger.warning(
            "could not log the %s to MLflow (%s: %s); the previous config and the evidence are in %s",
            change.action,
            type(err).__name__,
            err,
            change.previous.parent,
        )
        return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
