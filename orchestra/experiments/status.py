"""Where an experiment stands: arms, the current estimate with its always-valid CI, the SRM
check, the guardrails and the decision, as text (the CLI) and HTML tables (Jupyter).

    status = experiment.status()          # live; or experiment_status(name, config=..., tracking=...)
    print(status); status.candidates_table()
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from orchestra.config.experiments import CONTROL
from orchestra.experiments.monitor import Decision, Monitor, MonitorLook
from orchestra.experiments.plan import Plan


@dataclass(frozen=True, repr=False)
class ExperimentStatus:
    """A snapshot of one experiment."""

    name: str
    primary: str
    plan: Plan
    arms: pl.DataFrame  # arm, share, units, requests, quality, cost_usd, p95_latency_ms, error_rate
    look: MonitorLook | None
    decision: Decision | None
    details: dict[str, Any] = field(default_factory=dict)  # where it was written back, its run ids

    @property
    def state(self) -> str:
        return "running" if self.decision is None else f"ended: {self.decision.outcome}"

    def candidates_table(self) -> pl.DataFrame:
        """Per candidate at the last look: the primary estimate, its always-valid CI, p and verdict."""
        rows = []
        for look in self.look.candidates.values() if self.look else []:
            primary = look.primary
            rows.append(
                {
                    "arm": look.arm,
                    "n_control": look.n_control,
                    "n_candidate": look.n_candidate,
                    f"{self.primary}_difference": primary.effect if primary else None,
                    "ci_low": primary.ci_low if primary else None,
                    "ci_high": primary.ci_high if primary else None,
                    "p_always_valid": primary.p_value if primary else None,
                    "verdict": look.verdict,
                    "reason": look.reason,
                }
            )
        return pl.DataFrame(rows)

    def guardrails_table(self) -> pl.DataFrame:
        """Every guardrail of every candidate at the last look."""
        rows = []
        for look in self.look.candidates.values() if self.look else []:
            for check in look.guardrails:
                rows.append(
                    {
                        "arm": look.arm,
                        "metric": check.metric,
                        "rule": check.rule,
                        "estimate": check.look.effect if check.look else None,
                        "ci_low": check.look.ci_low if check.look else None,
                        "ci_high": check.look.ci_high if check.look else None,
                        "breached": check.breached,
                    }
                )
        return pl.DataFrame(rows)

    def srm_text(self) -> str:
        return (
            self.look.srm.verdict if self.look is not None and self.look.srm is not None else "no units yet"
        )

    def __str__(self) -> str:
        lines = [f"experiment {self.name}: {self.state}", f"plan: {self.plan}", "arms:"]
        for row in self.arms.iter_rows(named=True):
            lines.append(
                f"  {row['arm']:<14} share {row['share']:.0%}  units {row['units']}  "
                f"requests {row['requests']}  quality {_number(row['quality'])}  "
                f"cost ${_number(row['cost_usd'], 6)}  "
                f"p95 {_number(row['p95_latency_ms'], 0)} ms  errors {_number(row['error_rate'])}"
            )
        lines.append(f"SRM: {self.srm_text()}")
        for look in self.look.candidates.values() if self.look else []:
            lines.append(f"{look.arm} vs {CONTROL}: {look.verdict} - {look.reason}")
            lines += [f"  guardrail {check.describe()}" for check in look.guardrails]
        if self.decision is not None:
            decision = self.decision
            lines.append(
                f"decision: {decision.outcome.upper()} after {decision.total} requests - {decision.reason}"
            )
        lines += [f"{key}: {value}" for key, value in self.details.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        def table(frame: pl.DataFrame) -> str:
            return (
                frame.to_pandas().to_html(index=False, float_format=lambda v: f"{v:.4g}")
                if frame.height
                else "<i>none yet</i>"
            )

        decision = (
            f"<b>{html.escape(self.decision.outcome.upper())}</b> after {self.decision.total} requests: "
            f"{html.escape(self.decision.reason)}"
            if self.decision is not None
            else "running"
        )
        details = "".join(f"<li>{html.escape(f'{k}: {v}')}</li>" for k, v in self.details.items())
        return (
            f"<h4>experiment {html.escape(self.name)}</h4><p>{html.escape(str(self.plan))}</p>"
            f"<b>Arms</b>{table(self.arms)}<b>Primary metric ({html.escape(self.primary)}), always-valid</b>"
            f"{table(self.candidates_table())}<b>Guardrails</b>{table(self.guardrails_table())}"
            f"<p>SRM: {html.escape(self.srm_text())}</p><p>Decision: {decision}</p>"
            + (f"<ul>{details}</ul>" if details else "")
        )


def status_from_monitor(
    name: str, monitor: Monitor, details: dict[str, Any] | None = None
) -> ExperimentStatus:
    """The snapshot of a live (or replayed) monitor."""
    rows = []
    for arm, data in monitor.arms.items():
        rows.append(
            {
                "arm": arm,
                "share": monitor.shares[arm],
                "units": len(data.units),
                "requests": data.n,
                "quality": data.quality.mean if data.quality.n else None,
                "cost_usd": data.cost.mean if data.cost.n else None,
                "p95_latency_ms": data.p95() if data.latencies else None,
                "error_rate": data.errors.mean if data.errors.n else None,
            }
        )
    look = monitor.looks[-1] if monitor.looks else None
    return ExperimentStatus(
        name,
        monitor.settings.primary,
        monitor.plan,
        pl.DataFrame(rows),
        look,
        monitor.decision,
        dict(details or {}),
    )


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"
