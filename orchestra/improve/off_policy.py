"""Off-policy evaluation from logged single-provider requests: what would another router have
scored, judged only from what the logging router tried (its propensities are logged).

    estimate = off_policy_value(requests, policy.choose)                      # IPS and SNIPS
    estimate = off_policy_value(requests, policy.choose, reward_model=policy.expected_quality)  # + DR

- IPS weights each logged reward by 1 / (logged propensity) when the new policy would have
  chosen the logged provider; unbiased, high variance.
- SNIPS divides by the sum of those weights instead of n; a little biased, much steadier.
- Doubly robust (DR) starts from a reward model's prediction for the new choice and corrects it
  with the IPS-weighted residual of the logged reward: unbiased when either the propensities or
  the reward model are right, and with far less variance than IPS when the model is decent.
  The reward model here is the learned router's calibrated quality estimate.

Only requests where the logging router could have picked what the new one picks carry
information; with a deterministic logging router (rules) there is none, and the estimate says so
through `support` and `effective_sample_size`. CIs are normal approximations from the per-request
terms (SNIPS: the delta method).
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

RewardModel = Callable[[list[str], list[str]], np.ndarray]
"""(prompts, providers) -> the predicted reward of each provider on its prompt."""


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
    snips_ci: tuple[float, float] = (math.nan, math.nan)
    dr: float = math.nan
    dr_ci: tuple[float, float] = (math.nan, math.nan)

    def __str__(self) -> str:
        low, high = self.ips_ci
        text = f"IPS {self.ips:.4f} [{low:.4f}, {high:.4f}], SNIPS {self.snips:.4f}"
        if not math.isnan(self.dr):
            text += f", DR {self.dr:.4f} [{self.dr_ci[0]:.4f}, {self.dr_ci[1]:.4f}]"
        return text + (
            f" (logged {self.logged_value:.4f}; n={self.n}, matched={self.matched}, "
            f"ESS={self.effective_sample_size:.1f}, support={self.support:.0%})"
        )


def estimate(
    rewards: np.ndarray,
    logged_propensity: np.ndarray,
    matches: np.ndarray,
    *,
    target_support: np.ndarray | None = None,
    predicted_logged: np.ndarray | None = None,
    predicted_target: np.ndarray | None = None,
    confidence: float = 0.95,
) -> OffPolicyEstimate:
    """The estimators on arrays, one entry per logged request: the reward, the logged action's
    propensity, whether the new policy picks the logged action, (optionally) whether the logging
    policy could have picked the new policy's action, and the reward model's predictions for
    the logged and the new action (for DR)."""
    rewards = np.asarray(rewards, dtype=float)
    n = rewards.size
    valid = logged_propensity > 0
    weights = np.where(valid & matches, 1.0 / np.where(valid, logged_propensity, 1.0), 0.0)
    terms = weights * rewards
    z = stats.norm.ppf(0.5 + confidence / 2)
    ips = float(terms.mean())
    total = float(weights.sum())
    snips = float(terms.sum() / total) if total > 0 else math.nan
    snips_ci = (math.nan, math.nan)
    if total > 0 and n > 1:
        linear = weights * (rewards - snips) / (total / n)
        spread = z * linear.std(ddof=1) / math.sqrt(n)
        snips_ci = (snips - spread, snips + spread)
    dr, dr_ci = math.nan, (math.nan, math.nan)
    if predicted_logged is not None and predicted_target is not None:
        dr_terms = predicted_target + weights * (rewards - predicted_logged)
        dr = float(dr_terms.mean())
        dr_ci = _interval(dr_terms, z)
    return OffPolicyEstimate(
        ips=ips,
        ips_ci=_interval(terms, z),
        snips=snips,
        logged_value=float(rewards.mean()),
        n=n,
        matched=int((weights > 0).sum()),
        effective_sample_size=float(total**2 / (weights**2).sum()) if total > 0 else 0.0,
        support=float(target_support.mean()) if target_support is not None else math.nan,
        snips_ci=snips_ci,
        dr=dr,
        dr_ci=dr_ci,
    )


def off_policy_value(
    requests: pl.DataFrame,
    choose: Callable[[list[str]], list[str]],
    *,
    reward: str = "quality",
    confidence: float = 0.95,
    reward_model: RewardModel | None = None,
) -> OffPolicyEstimate:
    """IPS, SNIPS (and DR, given `reward_model`) estimates of the mean `reward` had
    `choose(prompts)` picked the provider. Uses requests answered by exactly one provider with a
    logged propensity for it."""
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
    chosen = choose(prompts)
    logged_p = np.array([p.get(action, 0.0) for p, action in zip(propensities, logged, strict=True)])
    target_p = np.array([p.get(action, 0.0) for p, action in zip(propensities, chosen, strict=True)])
    predicted = (None, None)
    if reward_model is not None:
        predicted = (np.asarray(reward_model(prompts, logged)), np.asarray(reward_model(prompts, chosen)))
    return estimate(
        rows[reward].to_numpy().astype(float),
        logged_p,
        np.array(chosen) == np.array(logged),
        target_support=target_p > 0,
        predicted_logged=predicted[0],
        predicted_target=predicted[1],
        confidence=confidence,
    )


def _interval(terms: np.ndarray, z: float) -> tuple[float, float]:
    mean = float(terms.mean())
    spread = z * terms.std(ddof=1) / math.sqrt(terms.size) if terms.size > 1 else math.inf
    return (mean - spread, mean + spread)
