"""The `experiments:` section of `config.yaml`: canary A/B tests on live traffic.

    experiments:
      mixtral-canary:
        candidates:
          mixtral: {overrides: {routing.rules.0.providers: [mixtral-8x7b]}}
        split: {control: 90, mixtral: 10}
        unit: user_id
        min_effect: 0.05
        guardrails: {quality: 0.05, cost: 0.2, latency_p95: 0.25, error_rate: 0.02}

The control is the config the section sits in; each candidate is a full config file (`config`)
or dotted overrides of the control (`routing.default_strategy`, `routing.rules.0.providers`,
`routing.rules.0.system_prompt`, `consensus.default_strategy`, ...). What each setting means
for the decision is described in `orchestra.experiments`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CONTROL = "control"
"""The name of the control arm."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CandidateSettings(_Section):
    """One candidate arm: a full config file, or dotted overrides of the control's config."""

    config: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> CandidateSettings:
        if self.config is not None and self.overrides:
            raise ValueError("give a candidate either config (a file) or overrides, not both")
        if self.config is None and not self.overrides:
            raise ValueError("a candidate needs config (a file) or overrides")
        return self


class GuardrailSettings(_Section):
    """How much worse than the control a candidate may be before it is stopped (None: no guardrail).

    quality: an absolute drop in mean quality; cost: a relative rise in mean cost per request;
    latency_p95: a relative rise in the 95th percentile of latency; error_rate: an absolute rise
    in the share of failed requests."""

    quality: float | None = Field(default=0.05, gt=0)
    cost: float | None = Field(default=0.25, gt=0)
    latency_p95: float | None = Field(default=0.25, gt=0)
    error_rate: float | None = Field(default=0.02, gt=0)


class ExperimentSettings(_Section):
    """One experiment: arms, split, assignment unit, decision metric, guardrails and stopping."""

    description: str = ""
    candidates: dict[str, CandidateSettings] = Field(min_length=1)
    split: dict[str, float] = Field(default_factory=dict)
    """Traffic weights by arm (`control` and every candidate; normalised); default: equal."""
    unit: Literal["user_id", "session_id", "request"] = "user_id"
    salt: str | None = None
    """Mixed into the assignment hash (default: the experiment's name); change it to reshuffle."""
    primary: Literal["quality", "cost", "error_rate"] = "quality"
    scorer: str | None = None
    """`module:function` called as f(prompt, response) -> float | None; default: the quality
    label the provider returns (replay providers carry the recorded judge label)."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """The false-promotion rate: the always-valid test's level, shared (Bonferroni) by candidates."""
    power: float = Field(default=0.8, gt=0.5, lt=1.0)
    min_effect: float = Field(default=0.05, gt=0)
    """The difference in the primary metric worth detecting (the power calculation's effect)."""
    baseline_sd: float | None = Field(default=None, gt=0)
    """The primary metric's standard deviation per request, for the power calculation; default:
    measured on the logged requests given at start, else 0.5 (a [0, 1] metric's largest)."""
    tau: float | None = Field(default=None, gt=0)
    """The mixture's scale for the primary metric (default: min_effect)."""
    look_every: int = Field(default=25, ge=1)
    min_per_arm: int = Field(default=100, ge=2)
    """No look before every arm has this many analysed requests (variance estimates settle)."""
    max_requests: int | None = Field(default=None, ge=2)
    """Overrides the maximum from the power calculation (the experiment is inconclusive there)."""
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)
    write_back: bool = True
    """Promotion writes the candidate into the config file (else it is only reported)."""

    @model_validator(mode="after")
    def _split_names_the_arms(self) -> ExperimentSettings:
        if CONTROL in self.candidates:
            raise ValueError(f"{CONTROL!r} is the control arm's name; name the candidates otherwise")
        if self.split:
            arms = {CONTROL, *self.candidates}
            if set(self.split) != arms:
                raise ValueError(
                    f"split must give a weight to each arm: {sorted(arms)} (got {sorted(self.split)})"
                )
            if any(not weight > 0 for weight in self.split.values()):
                raise ValueError("split weights must be positive")
        return self

    def shares(self) -> dict[str, float]:
        """Each arm's share of traffic, control first."""
        arms = [CONTROL, *self.candidates]
        weights = {arm: self.split.get(arm, 1.0) for arm in arms}
        total = sum(weights.values())
        return {arm: weight / total for arm, weight in weights.items()}
