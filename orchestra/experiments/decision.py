"""What one look says about one candidate: continue, promote, stop or inconclusive, and why.

Rules, in this order (each candidate against the control, at level alpha / candidates for the
primary metric and alpha for each guardrail):

1. stop: a guardrail is breached: the always-valid interval lies wholly beyond its limit
   (quality lower by more than its drop; cost, p95 latency higher by more than their share;
   error rate higher by more than its rise);
2. stop: the primary metric is worse: its interval lies wholly on the wrong side of zero;
3. stop: the sample ratio is off (chi-square p < srm_threshold): assignment is broken, and no
   estimate from it can be trusted;
4. promote: the primary metric is better (its interval wholly on the right side of zero) and
   every guardrail is shown within its limit (its interval wholly inside it: quality
   non-inferior by its drop, cost, p95 latency and errors no worse than theirs; a metric equal
   in every request of both arms so far counts as within): the write-back gate of `orchestra
   improve` (non-inferior, and better), with always-valid intervals in place of the
   fixed-sample t-test. A 36 times dearer candidate is never promoted under a 25% cost limit,
   however early its quality shows;
5. inconclusive: the plan's maximum number of requests is reached;
6. continue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestra.analysis.ab.sequential import Look

Verdict = Literal["continue", "promote", "stop", "inconclusive"]
DIRECTION = {"quality": 1.0, "cost": -1.0, "error_rate": -1.0}
"""+1: higher is better; -1: lower is better."""


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail at one look (`look` None: not estimable yet)."""

    metric: str
    limit: float
    look: Look | None
    breached: bool
    rule: str  # what a breach means, e.g. "quality lower by more than 0.05"
    within: bool | None = None  # shown within the limit (None: not known yet)

    def describe(self) -> str:
        if self.look is None:
            return f"{self.metric}: not estimable yet"
        state = "BREACHED" if self.breached else "ok"
        return (
            f"{self.metric}: {state} ({self.rule}; estimate {self.look.effect:+.4g}, "
            f"always-valid CI [{self.look.ci_low:+.4g}, {self.look.ci_high:+.4g}])"
        )


@dataclass(frozen=True)
class CandidateLook:
    """A candidate at one look: the primary comparison, the guardrails and the verdict."""

    arm: str
    n_control: int
    n_candidate: int
    primary: Look | None
    guardrails: tuple[GuardrailCheck, ...]
    verdict: Verdict
    reason: str


def verdict(
    *,
    primary_metric: str,
    primary: Look | None,
    guardrails: tuple[GuardrailCheck, ...],
    srm_mismatch: bool,
    srm_text: str,
    total: int,
    max_requests: int,
) -> tuple[Verdict, str]:
    """The verdict of the rules in the module docstring, with its reason."""
    breached = [g for g in guardrails if g.breached]
    if breached:
        return "stop", "guardrail breached: " + "; ".join(g.describe() for g in breached)
    direction = DIRECTION[primary_metric]
    if primary is not None:
        low, high = sorted((direction * primary.ci_low, direction * primary.ci_high))
        interval = (
            f"{primary_metric} {primary.effect:+.4g}, always-valid CI "
            f"[{primary.ci_low:+.4g}, {primary.ci_high:+.4g}], p={primary.p_value:.3g}"
        )
        if high < 0:
            return "stop", f"worse on the primary metric: {interval}"
        if srm_mismatch:
            return "stop", srm_text
        if low > 0:
            pending = [g.metric for g in guardrails if not g.within]
            if pending:
                return (
                    "continue",
                    f"better ({interval}); not yet shown within the limits of {', '.join(pending)}",
                )
            return "promote", f"better on the primary metric: {interval}; every guardrail within its limit"
    elif srm_mismatch:
        return "stop", srm_text
    if total >= max_requests:
        return "inconclusive", f"reached the planned maximum of {max_requests} requests without a decision"
    return "continue", "collecting evidence"
