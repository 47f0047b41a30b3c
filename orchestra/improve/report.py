"""What one improvement cycle found: the splits, the power check, the candidates, the confirm
comparison and the decision, and the config it would write.

    print(report)                          # a readable summary
    report.status                          # accepted | proposed | rejected
    report.write("config.candidate.yaml")  # the candidate config, evidence in its header
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import yaml

from orchestra.analysis.ab.result import TestResult
from orchestra.errors import ConfigError
from orchestra.improve.candidates import Candidate
from orchestra.improve.gate import GateDecision, GatedOutcome, PowerCheck
from orchestra.improve.splits import Split


@dataclass
class ImprovementReport(GatedOutcome):
    """One cycle of `improve`: evidence, decision and the candidate config."""

    no_candidate: ClassVar[str] = "no candidate could be fitted"

    split: Split
    power: PowerCheck
    candidates: list[Candidate]
    candidate: Candidate | None
    current: pl.DataFrame  # confirm prompts under the current config
    learned: pl.DataFrame  # confirm prompts under the candidate config
    decision: GateDecision | None
    policy_dir: Path | None
    config: dict[str, Any] | None
    source: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def quality(self) -> TestResult:
        assert self.decision is not None, self.reason
        return self.decision.quality

    @property
    def cost(self) -> TestResult:
        assert self.decision is not None, self.reason
        return self.decision.cost

    @property
    def p_non_inferior(self) -> float:
        return self.decision.p_non_inferior if self.decision is not None else 1.0

    @property
    def p_replicates(self) -> float:
        return self.decision.p_replicates if self.decision is not None else 0.0

    def evidence(self) -> dict[str, Any]:
        """The decision's numbers as plain JSON (logged with a write-back)."""
        evidence: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "split": {
                "fit": len(self.split.fit),
                "select": len(self.split.select),
                "confirm": len(self.split.confirm),
            },
            "power": {
                "detectable": self.power.detectable,
                "required": self.power.required,
                "sd": self.power.sd,
                "n": self.power.n,
                "alpha": self.power.alpha,
                "power": self.power.power,
                "adequate": self.power.adequate,
            },
            "candidates": [
                {
                    "kind": c.kind,
                    "description": c.describe(),
                    "target": str(c.pick.target),
                    "met": c.pick.met,
                    "select_spend_per_1k": c.pick.spend_per_1k,
                    "select_quality": c.pick.quality,
                }
                for c in self.candidates
            ],
            "details": self.details,
        }
        if self.decision is not None:
            q, c = self.decision.quality, self.decision.cost
            evidence["confirm"] = {
                "quality_current": q.estimate_a,
                "quality_candidate": q.estimate_b,
                "quality_difference": q.effect,
                "quality_ci": [q.ci_low, q.ci_high],
                "quality_p_value": q.p_value,
                "p_non_inferior": self.decision.p_non_inferior,
                "lower_bound": self.decision.lower_bound,
                "p_replicates": self.decision.p_replicates,
                "cost_current": c.estimate_a,
                "cost_candidate": c.estimate_b,
                "cost_difference": c.effect,
                "cost_ci": [c.ci_low, c.ci_high],
            }
        return evidence

    def header(self) -> list[str]:
        """The evidence as YAML comment lines for the written config."""
        lines = [
            f"# Written by `orchestra improve` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            + (f" from {self.source.name}." if self.source else "."),
            f"# Splits: {self.split}. {self.power}.",
        ]
        if self.candidate is not None and self.decision is not None:
            q, c = self.quality, self.cost
            lines += [
                f"# Candidate: {self.candidate.describe()} ({self.candidate.pick}).",
                f"# Confirm prompts: {q.n_a}. Quality {q.estimate_a:.4f} -> {q.estimate_b:.4f}, "
                f"difference {q.effect:+.4f} [{q.ci_low:+.4f}, {q.ci_high:+.4f}], "
                f"non-inferiority p={self.p_non_inferior:.3g}, P(replicates)={self.p_replicates:.2f}.",
                f"# Cost per request ${c.estimate_a:.6f} -> ${c.estimate_b:.6f}.",
            ]
        lines.append(f"# Decision: {self.status} - {self.reason}")
        return lines

    def render(self) -> str:
        """The candidate config as YAML text, the evidence in its header."""
        if self.config is None:
            raise ConfigError(f"there is no candidate config ({self.reason})")
        body = yaml.safe_dump(
            self.config, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
        )
        return "\n".join(self.header()) + "\n\n" + body

    def write(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the candidate config to `path` (not a write-back: see `orchestra.improve.versions`).
        Refuses unless accepted, or `force`."""
        if not self.accepted and not force:
            raise ConfigError(
                f"the candidate config was not accepted ({self.reason}); pass force=True to write it"
            )
        target = Path(path)
        target.write_text(self.render(), encoding="utf-8")
        return target

    def __str__(self) -> str:
        lines = [f"splits: {self.split}", f"power: {self.power}"]
        for c in self.candidates:
            lines.append(f"candidate {c.kind}: {c.describe()}; select split: {c.pick}")
        if self.decision is not None and self.candidate is not None:
            q, c = self.quality, self.cost
            lines += [
                f"confirm ({q.n_a} prompts): {self.candidate.describe()}",
                f"quality  current {q.estimate_a:.4f}  candidate {q.estimate_b:.4f}  "
                f"difference {q.effect:+.4f} [{q.ci_low:+.4f}, {q.ci_high:+.4f}]  "
                f"non-inferiority p={self.p_non_inferior:.3g}  P(replicates)={self.p_replicates:.2f}",
                f"cost     current ${c.estimate_a:.6f}  candidate ${c.estimate_b:.6f}  "
                f"difference {c.effect:+.6f} [{c.ci_low:+.6f}, {c.ci_high:+.6f}]",
            ]
        verdict = {
            "accepted": "ACCEPT",
            "proposed": "PROPOSE (not applied)",
            "rejected": "keep the current config",
        }
        lines.append(f"decision: {verdict[self.status]} - {self.reason}")
        return "\n".join(lines)
