"""Off-policy evaluation from logged single-provider requests: what would another router have
scored, judged only from what the logging router tried (its propensities are logged).

    estimate = off_policy_value(requests, policy.choose)     # IPS and self-normalised IPS

Only requests where the logging router could have picked what the new one picks carry
information; with a deterministic logging router (rules) there is none, and the estimate says
so through `support` and `effective_sample_size`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class OffPolicyEstimate:
    ips: float
    ips_ci: tuple[float, float]
    snips: float
    logged_value: float
    n: int
    matched: int
    effective_sample_size: float
    support: float  # share of requests whose logged propensity of the new choice was > 0

    def __str__(self) -> str:
        low, high = self.ips_ci
        return (
            f"IPS {self.ips:.4f} [{low:.4f}, {high:.4f}], SNIPS {self.snips:.4f} "
            f"(logged {self.logged_value:.4f}; n={self.n}, matched={self.matched}, "
            f"ESS={self.effective_sample_size:.1f}, support={self.support:.0%})"
        )


def off_policy_value(
    requests: pl.DataFrame,
    choose: Callable[[list[str]], list[str]],
    *,
    reward: str = "quality",
    confidence: float = 0.95,
) -> OffPolicyEstimate:
    """IPS and SNIPS estimates of the mean `reward` had `choose(prompts)` picked the provider.

    Uses requests answered by exactly one provider with a logged propensity for it."""
    needed = {"prompt", "answered_by", "propensities_json", reward}
    if needed - set(requests.columns):
        raise AnalysisError(f"off-policy evaluation needs columns {sorted(needed - set(requests.columns))}")
    rows = requests.filter(
        pl.col("answered_by").is_not_null() & pl.col(reward).is_not_null() & (pl.col("n_calls") == 1)
        if "n_calls" in requests.columns
        else pl.col("answered_by").is_not_null() & pl.col(reward).is_not_null()
    )
    if rows.is_empty():
        raise AnalysisError("no single-provider requests with a reward to evaluate from")
    prompts = rows["prompt"].to_list()
    logged = rows["answered_by"].to_list()
    propensities = [json.loads(text or "{}") for text in rows["propensities_json"].to_list()]
    rewards = rows[reward].to_numpy().astype(float)
    chosen = choose(prompts)
    logged_p = np.array([p.get(action, 0.0) for p, action in zip(propensities, logged, strict=True)])
    target_p = np.array([p.get(action, 0.0) for p, action in zip(propensities, chosen, strict=True)])
    valid = logged_p > 0
    weights = np.where(valid, np.array(chosen) == np.array(logged), 0.0) / np.where(valid, logged_p, 1.0)
    contributions = weights * rewards
    n = rewards.size
    ips = float(contributions.mean())
    spread = (
        stats.norm.ppf(0.5 + confidence / 2) * contributions.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
    )
    total = weights.sum()
    return OffPolicyEstimate(
        ips=ips,
        ips_ci=(ips - spread, ips + spread),
        snips=float(contributions.sum() / total) if total > 0 else math.nan,
        logged_value=float(rewards.mean()),
        n=n,
        matched=int((weights > 0).sum()),
        effective_sample_size=float(total**2 / (weights**2).sum()) if total > 0 else 0.0,
        support=float((target_p > 0).mean()),
    )
