"""The write-back gate: is the candidate config no worse than the current one, and better in
quality or cheaper, on prompts it was neither fitted nor selected on?

    check = power_check(sd=0.4, n=160, alpha=0.1, power=0.8, required=0.05)
    decision = decide(current_q, candidate_q, current_cost, candidate_cost, margin=0.05,
                      confidence=0.95, power=check)
    decision.status, decision.p_non_inferior, decision.p_replicates

The test (paired by prompt): non-inferiority, H0: mean(candidate - current) <= -margin, one-sided
t-test at 1 - confidence; then a gain: a quality better at the same confidence (superiority), or
a mean cost lower by at least `min_saving` (a 1% saving is no reason to change a config). The
probability that the gain replicates is the predictive probability that, on as many new
prompts, the candidate again clears the margin (and, for a cost gain, again costs less), from
the normal approximation with the estimate's uncertainty counted twice (once for the estimate,
once for the new sample).

The power check answers "what difference can the confirm split detect?" (the minimum detectable
effect of a one-sided paired t-test at 1 - confidence with the configured power, from
statsmodels' `TTestPower`); when it is larger than the configured minimum
effect, a candidate that passes is proposed, not applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from scipy import stats

from orchestra.analysis.ab.means import paired_t
from orchestra.analysis.ab.result import TestResult

Status = Literal["accepted", "proposed", "rejected"]


@dataclass(frozen=True)
class PowerCheck:
    """What the confirm split can detect, against what it is required to detect."""

    n: int
    sd: float
    alpha: float
    power: float
    detectable: float
    required: float
    basis: str

    @property
    def adequate(self) -> bool:
        return self.detectable <= self.required + 1e-12

    def __str__(self) -> str:
        verdict = "enough" if self.adequate else "NOT enough"
        return (
            f"{self.n} confirm prompts detect {self.detectable:.4f} (one-sided alpha {self.alpha:g}, "
            f"power {self.power:g}, sd of paired differences {self.sd:.3f} from {self.basis}); "
            f"required {self.required:g}: {verdict}"
        )


def power_check(*, sd: float, n: int, alpha: float, power: float, required: float, basis: str) -> PowerCheck:
    """The minimum detectable effect of the confirm test for a paired-difference sd `sd`."""
    if n < 2:
        detectable = math.inf
    elif sd <= 0:
        detectable = 0.0
    else:
        from statsmodels.stats.power import TTestPower

        # One-sided paired t-test. (statsmodels directly: `analysis.ab.power.minimum_detectable_effect`
        # fails when statsmodels' solver returns a one-element array, e.g. for n = 101.)
        d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative="larger")
        detectable = float(np.asarray(d).item()) * sd
    return PowerCheck(n, float(sd), alpha, power, float(detectable), required, basis)


@dataclass(frozen=True)
class GateDecision:
    """The confirm split's verdict on the candidate."""

    status: Status
    quality: TestResult  # candidate - current, paired by prompt
    cost: TestResult
    p_non_inferior: float  # one-sided: H0 candidate quality <= current - margin
    lower_bound: float  # one-sided lower confidence bound of the quality difference
    p_replicates: float
    gain: str  # "quality", "cost" or "none"
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def decide(
    current_quality: np.ndarray,
    candidate_quality: np.ndarray,
    current_cost: np.ndarray,
    candidate_cost: np.ndarray,
    *,
    margin: float,
    confidence: float,
    power: PowerCheck | None = None,
    min_saving: float = 0.0,
) -> GateDecision:
    """Non-inferiority within `margin` at `confidence`, plus a gain: a quality better with the same
    confidence (one-sided paired t-test), or a mean cost lower by at least `min_saving` of the
    current config's."""
    quality = paired_t(
        current_quality, candidate_quality, metric="quality", arm_a="current", arm_b="candidate"
    )
    cost = paired_t(current_cost, candidate_cost, metric="cost_usd", arm_a="current", arm_b="candidate")
    differences = np.asarray(candidate_quality, float) - np.asarray(current_quality, float)
    differences = differences[~np.isnan(differences)]
    n = differences.size
    mean = float(differences.mean())
    se = float(differences.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    alpha = 1.0 - confidence
    if se == 0:
        p_non_inferior = 0.0 if mean > -margin else 1.0
        lower = mean
    else:
        p_non_inferior = float(stats.t.sf((mean + margin) / se, n - 1))
        lower = mean - float(stats.t.ppf(confidence, n - 1)) * se
    cost_differences = np.asarray(candidate_cost, float) - np.asarray(current_cost, float)
    cost_se = float(np.nanstd(cost_differences, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    p_superior = (
        1.0 if not math.isfinite(se) else float(mean <= 0) if se == 0 else float(stats.t.sf(mean / se, n - 1))
    )
    saving = -cost.effect / cost.estimate_a if cost.estimate_a > 0 else 0.0
    # The claim whose replication is reported: a lower cost (with non-inferior quality) when the
    # candidate saves enough, as that is the better supported one; else a better quality.
    gain = (
        "cost" if saving >= max(min_saving, 1e-12) else "quality" if p_superior < 1.0 - confidence else "none"
    )
    p_replicates = _replication(mean, se, margin, gain, float(np.nanmean(cost_differences)), cost_se)
    if p_non_inferior >= alpha:
        status: Status = "rejected"
        reason = (
            f"quality may be worse by more than {margin:g} (non-inferiority p={p_non_inferior:.3g} >= "
            f"{alpha:.2g}; difference {mean:+.4f}, one-sided {confidence:.0%} bound {lower:+.4f})"
        )
    elif gain == "none":
        status = "rejected"
        reason = (
            f"non-inferior, but neither better in quality (difference {mean:+.4f}, superiority "
            f"p={p_superior:.3g}) nor cheaper by {min_saving:.0%} (saving {saving:.1%})"
        )
    else:
        gains = (
            [f"quality {quality.effect:+.4f} (superiority p={p_superior:.3g})"] if gain == "quality" else []
        )
        if cost.effect < 0:
            gains.append(f"cost {-saving:+.0%}")
        reason = f"non-inferior (p={p_non_inferior:.3g} < {alpha:.2g}) with {', '.join(gains)}"
        if power is not None and not power.adequate:
            status = "proposed"
            reason += (
                f"; PROPOSED, not applied: the confirm split detects only {power.detectable:.3f} "
                f"> the required {power.required:g}"
            )
        else:
            status = "accepted"
    return GateDecision(status, quality, cost, p_non_inferior, lower, p_replicates, gain, reason)


def _replication(mean: float, se: float, margin: float, gain: str, cost_mean: float, cost_se: float) -> float:
    """Predictive probability that a new sample of the same size shows the same result."""
    if not math.isfinite(se):
        return math.nan
    spread = math.sqrt(2.0) * se

    def above(value: float, scale: float) -> float:
        return float(value > 0) if scale == 0 else float(stats.norm.cdf(value / scale))

    non_inferior = above(mean + margin, spread)
    if gain == "quality":
        return above(mean, spread)
    if gain == "cost":
        return non_inferior * above(-cost_mean, math.sqrt(2.0) * cost_se)
    return non_inferior


class GatedOutcome:
    """`status`, `accepted` and `reason` of a report that holds the gate's decision, if one was
    made (`details["no_candidate"]` says why not)."""

    decision: GateDecision | None
    details: dict[str, Any]
    no_candidate: ClassVar[str] = "no candidate"

    @property
    def status(self) -> Status:
        return self.decision.status if self.decision is not None else "rejected"

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def reason(self) -> str:
        if self.decision is not None:
            return self.decision.reason
        return str(self.details.get("no_candidate", self.no_candidate))
