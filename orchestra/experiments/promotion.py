"""Promotion: the winning candidate's config written back through the gate and the provenance
of `orchestra improve` (the previous config kept in `<config>.versions/`, a readable diff, an
MLflow run with the evidence, and `orchestra improve rollback` to undo it).

    promotion = Promotion(name, status, candidate_raw)
    change, run_id = write_promotion(promotion, "config.yaml", tracking)

The gate here is the experiment's decision (`orchestra.experiments.decision`): better on the
primary metric and non-inferior on quality, with always-valid intervals; `write_back` refuses a
promotion that was not accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from orchestra.config.experiments import CONTROL
from orchestra.experiments.status import ExperimentStatus
from orchestra.improve.provenance import log_config_change
from orchestra.improve.versions import ConfigChange, write_back
from orchestra.tracking.settings import TrackingSettings


@dataclass(frozen=True)
class Promotion:
    """An ended experiment's decision, as a write-back candidate."""

    name: str
    status: ExperimentStatus
    config: dict[str, Any] | None  # the promoted candidate's config as written

    @property
    def accepted(self) -> bool:
        decision = self.status.decision
        return decision is not None and decision.outcome == "promote" and self.config is not None

    @property
    def reason(self) -> str:
        decision = self.status.decision
        return decision.reason if decision is not None else "the experiment has not ended"

    def evidence(self) -> dict[str, Any]:
        """The decision's numbers as plain JSON."""
        decision = self.status.decision
        candidates = self.status.candidates_table()
        guardrails = self.status.guardrails_table()
        return {
            "status": "accepted" if self.accepted else "rejected",
            "experiment": self.name,
            "decision": decision.outcome if decision else None,
            "arm": decision.arm if decision else None,
            "reason": self.reason,
            "requests": decision.total if decision else None,
            "plan": self.status.plan.as_dict(),
            "arms": self.status.arms.to_dicts(),
            "candidates": candidates.to_dicts(),
            "guardrails": guardrails.to_dicts(),
            "srm": self.status.srm_text(),
        }

    def render(self) -> str:
        """The promoted config as YAML, the evidence in its header."""
        decision = self.status.decision
        header = [
            f"# Written by experiment {self.name!r} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
            f"arm {decision.arm if decision else '?'} promoted over the {CONTROL}.",
            f"# {self.status.plan}.",
            f"# Decision: {self.reason}",
        ]
        body = yaml.safe_dump(
            self.config, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
        )
        return "\n".join(header) + "\n\n" + body


def write_promotion(
    promotion: Promotion, config: str | Path, tracking: TrackingSettings | None
) -> tuple[ConfigChange, str | None]:
    """Write the promoted config back (refused unless accepted) and log the change as a run."""
    change = write_back(promotion, config)
    evidence = promotion.evidence()
    metrics = {
        f"{row['arm']}.{key}": float(value)
        for row in evidence["candidates"]
        for key, value in row.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }
    params = {"experiment": promotion.name, "arm": str(evidence["arm"]), "reason": promotion.reason[:500]}
    run_id = log_config_change(
        tracking, change, params=params, metrics=metrics, evidence=evidence, kind="experiment"
    )
    return change, run_id
