"""Monitoring an experiment as its requests arrive: running sums per arm, a look every
`look_every` requests, a verdict per candidate, and the experiment's decision.

    monitor = Monitor(settings, plan)
    monitor.assigned("mixtral", "user-17")            # every assignment (the SRM check counts units)
    monitor.record("mixtral", Observation(quality=1.0, cost_usd=0.0004, latency_ms=812, error=False))
    if monitor.due():
        look = monitor.look()                         # look.decision: None until the experiment ends

The rules of a verdict are in `orchestra.experiments.decision`; the sequences in
`orchestra.experiments.sequential`. The monitor is pure state: the same observations in the
same order give the same looks, whether they come from live traffic or a recorded table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from orchestra.analysis.ab.sequential import Look
from orchestra.analysis.ab.srm import SRMResult, sample_ratio_mismatch
from orchestra.config.experiments import CONTROL, ExperimentSettings
from orchestra.experiments.decision import DIRECTION, CandidateLook, GuardrailCheck, Verdict, verdict
from orchestra.experiments.plan import Plan
from orchestra.experiments.sequential import (
    DifferenceSequence,
    ExceedanceSequence,
    RelativeSequence,
    RunningMoments,
    SequentialSRM,
)

P95_SHARE = 0.05
LATENCY_WARMUP = 400
"""Control requests before the p95 latency threshold is fixed (20 of them above its p95): fixed
on fewer, a low estimate of the control's p95 makes an equal candidate look slower."""


@dataclass(frozen=True)
class Observation:
    """One analysed request: a failed request has quality 0 (it gave no answer)."""

    quality: float | None
    cost_usd: float
    latency_ms: float
    error: bool


@dataclass
class ArmData:
    """Running sums of one arm's analysed requests, and its assignment count."""

    units: set[str] = field(default_factory=set)
    quality: RunningMoments = field(default_factory=RunningMoments)
    cost: RunningMoments = field(default_factory=RunningMoments)
    errors: RunningMoments = field(default_factory=RunningMoments)
    latencies: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.errors.n

    def add(self, observation: Observation) -> None:
        quality = 0.0 if observation.error else observation.quality
        if quality is not None and math.isfinite(quality):
            self.quality.add(float(quality))
        self.cost.add(float(observation.cost_usd))
        self.errors.add(1.0 if observation.error else 0.0)
        if math.isfinite(observation.latency_ms):  # a failed request's latency is not known
            self.latencies.append(float(observation.latency_ms))

    def metric(self, name: str) -> RunningMoments:
        return {"quality": self.quality, "cost": self.cost, "error_rate": self.errors}[name]

    def p95(self) -> float:
        return float(np.quantile(self.latencies, 0.95)) if self.latencies else math.nan


@dataclass(frozen=True)
class Decision:
    """How the experiment ended: promote (with the winning arm), stop, or inconclusive."""

    outcome: Verdict
    arm: str | None  # the promoted candidate
    reason: str
    total: int


@dataclass(frozen=True)
class SRMCheck:
    """The sample-ratio check at one look: the always-valid p-value the decision uses, and the
    chi-square test of `sample_ratio_mismatch` (shown; computed when asked for)."""

    counts: dict[str, int]
    shares: dict[str, float]
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    @property
    def chi_square(self) -> SRMResult:
        return sample_ratio_mismatch(self.counts, self.shares, threshold=self.threshold)

    @property
    def verdict(self) -> str:
        observed = ", ".join(f"{arm} {count}" for arm, count in self.counts.items())
        state = "Sample ratio mismatch" if self.mismatch else "No sample ratio mismatch"
        return (
            f"{state} (always-valid p={self.p_value:.2g}, chi-square p={self.chi_square.p_value:.2g}): "
            f"units {observed}"
        )


@dataclass(frozen=True)
class MonitorLook:
    """One look: requests so far, the SRM check, each candidate's state, and the decision."""

    index: int
    total: int
    srm: SRMCheck | None
    candidates: dict[str, CandidateLook]
    decision: Decision | None


class _Candidate:
    """The sequences comparing one candidate with the control."""

    def __init__(self, settings: ExperimentSettings, plan: Plan) -> None:
        guard = settings.guardrails
        self.primary = DifferenceSequence(plan.alpha, plan.tau)
        self.quality = DifferenceSequence(settings.alpha, guard.quality) if guard.quality else None
        self.cost = RelativeSequence(settings.alpha, guard.cost) if guard.cost else None
        self.errors = DifferenceSequence(settings.alpha, guard.error_rate) if guard.error_rate else None
        self.latency: ExceedanceSequence | None = None
        self.final: CandidateLook | None = None

    def guardrails(
        self, settings: ExperimentSettings, control: ArmData, arm: ArmData
    ) -> tuple[GuardrailCheck, ...]:
        guard, checks = settings.guardrails, []
        if self.quality is not None and guard.quality is not None:
            look = self.quality.update(control.quality, arm.quality)
            checks.append(
                GuardrailCheck(
                    "quality", guard.quality, look, look is not None and look.ci_high < -guard.quality,
                    f"lower by more than {guard.quality:g}",
                    look.ci_low > -guard.quality if look else _constant(control.quality, arm.quality),
                )
            )  # fmt: skip
        if self.cost is not None and guard.cost is not None:
            look = self.cost.update(control.cost, arm.cost)
            checks.append(_not_higher("cost", guard.cost, look, f"{guard.cost:.0%}", control.cost, arm.cost))
        if guard.latency_p95 is not None:
            checks.append(self._latency(settings, guard.latency_p95, control, arm))
        if self.errors is not None and guard.error_rate is not None:
            look = self.errors.update(control.errors, arm.errors)
            limit = guard.error_rate
            checks.append(_not_higher("error_rate", limit, look, f"{limit:g}", control.errors, arm.errors))
        return tuple(checks)

    def _latency(
        self, settings: ExperimentSettings, limit: float, control: ArmData, arm: ArmData
    ) -> GuardrailCheck:
        if self.latency is None and control.n < LATENCY_WARMUP:
            rule = f"p95 higher by more than {limit:.0%} (fixed after {LATENCY_WARMUP} control requests)"
            return GuardrailCheck("latency_p95", limit, None, False, rule, None)
        if self.latency is None:  # fixed once: the sequence's threshold must not move with the data
            threshold = control.p95() * (1 + limit)
            self.latency = ExceedanceSequence(settings.alpha, P95_SHARE, threshold, P95_SHARE)
        above = int(np.sum(np.asarray(arm.latencies) > self.latency.threshold))
        look = self.latency.update(len(arm.latencies), above)
        rule = (
            f"p95 higher by more than {limit:.0%}: more than {P95_SHARE:.0%} of requests "
            f"above {self.latency.threshold:.0f} ms"
        )
        breached = look is not None and look.ci_low > 0
        return GuardrailCheck("latency_p95", limit, look, breached, rule, look.ci_high < 0 if look else None)


def _not_higher(
    metric: str, limit: float, look: Look | None, shown: str, control: RunningMoments, arm: RunningMoments
) -> GuardrailCheck:
    """A guardrail that the candidate's `metric` is not higher than the control's by `limit`."""
    breached = look is not None and look.ci_low > limit
    within = look.ci_high < limit if look is not None else _constant(control, arm)
    return GuardrailCheck(metric, limit, look, breached, f"higher by more than {shown}", within)


def _constant(control: RunningMoments, candidate: RunningMoments) -> bool | None:
    """Within when both arms have had one same value in every request so far (no variance, no
    difference: an error rate of zero in both); unknown otherwise."""
    if min(control.n, candidate.n) < 2:
        return None
    return (control.m2 == 0 and candidate.m2 == 0 and control.mean == candidate.mean) or None


class Monitor:
    """The state of a running experiment (see the module docstring)."""

    def __init__(self, settings: ExperimentSettings, plan: Plan) -> None:
        self.settings = settings
        self.plan = plan
        self.shares = settings.shares()
        self.arms = {arm: ArmData() for arm in self.shares}
        self._candidates = {arm: _Candidate(settings, plan) for arm in settings.candidates}
        self.looks: list[MonitorLook] = []
        self.decision: Decision | None = None
        self._at_last_look = 0
        self._srm_sequence = SequentialSRM(self.shares)

    @property
    def total(self) -> int:
        """Analysed requests, all arms."""
        return sum(arm.n for arm in self.arms.values())

    def running(self, arm: str) -> bool:
        """Whether `arm` still receives its own traffic (the control always does until the end)."""
        if self.decision is not None:
            return False
        return arm == CONTROL or self._candidates[arm].final is None

    def assigned(self, arm: str, unit: str) -> None:
        """Count `unit` as assigned to `arm` (the SRM check compares distinct units per arm)."""
        self.arms[arm].units.add(unit)

    def record(self, arm: str, observation: Observation) -> None:
        self.arms[arm].add(observation)

    def due(self) -> bool:
        return self.decision is None and self.total - self._at_last_look >= self.settings.look_every

    def look(self) -> MonitorLook:
        """Evaluate every running candidate; decide when the experiment ends."""
        self._at_last_look = total = self.total
        srm = self._srm()
        control = self.arms[CONTROL]
        looks: dict[str, CandidateLook] = {}
        for name, candidate in self._candidates.items():
            if candidate.final is not None:
                looks[name] = candidate.final
                continue
            looks[name] = self._candidate_look(name, candidate, control, srm, total)
            if looks[name].verdict != "continue":
                candidate.final = looks[name]
        self.decision = self._decide(looks, total)
        look = MonitorLook(len(self.looks), total, srm, looks, self.decision)
        self.looks.append(look)
        return look

    def _candidate_look(
        self, name: str, candidate: _Candidate, control: ArmData, srm: SRMCheck | None, total: int
    ) -> CandidateLook:
        arm = self.arms[name]
        settings = self.settings
        warm = min(control.n, arm.n) >= settings.min_per_arm
        primary: Look | None = None
        checks: tuple[GuardrailCheck, ...] = ()
        if warm:
            primary = candidate.primary.update(control.metric(settings.primary), arm.metric(settings.primary))
            checks = candidate.guardrails(settings, control, arm)
        mismatch = warm and srm is not None and srm.mismatch
        outcome, reason = verdict(
            primary_metric=settings.primary,
            primary=primary,
            guardrails=checks,
            srm_mismatch=mismatch,
            srm_text=srm.verdict if mismatch and srm is not None else "",
            total=total,
            max_requests=self.plan.max_requests,
        )
        if not warm and outcome == "continue":
            reason = f"warming up: {min(control.n, arm.n)} of {settings.min_per_arm} requests per arm"
        return CandidateLook(name, control.n, arm.n, primary, checks, outcome, reason)

    def _srm(self) -> SRMCheck | None:
        counts = {arm: len(data.units) for arm, data in self.arms.items()}
        if sum(counts.values()) == 0:
            return None
        p_value = self._srm_sequence.update(counts)
        return SRMCheck(counts, dict(self.shares), p_value, self.settings.srm_threshold)

    def _decide(self, looks: dict[str, CandidateLook], total: int) -> Decision | None:
        promoted = [look for look in looks.values() if look.verdict == "promote"]
        if promoted:
            direction = DIRECTION[self.settings.primary]
            best = max(
                promoted, key=lambda look: direction * look.primary.effect if look.primary else -math.inf
            )
            return Decision("promote", best.arm, f"{best.arm}: {best.reason}", total)
        if any(look.verdict == "continue" for look in looks.values()):
            return None
        outcome: Verdict = (
            "stop" if all(look.verdict == "stop" for look in looks.values()) else "inconclusive"
        )
        reason = "; ".join(f"{look.arm}: {look.verdict} ({look.reason})" for look in looks.values())
        return Decision(outcome, None, reason, total)
