"""Typed settings for `config.yaml`, in the seed's shape.

Sections: framework, models, datasets, routing, consensus, improvement, performance, pricing,
experiments. Unknown keys are rejected so that a typo is an error, not a silently ignored
setting. Older spellings of a few keys are rewritten to the current ones before validation, with
a deprecation warning (`orchestra.compat.rewrite_config`), so each setting has one name here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from orchestra.config.experiments import ExperimentSettings
from orchestra.types import ModelProvider, TaskComplexity

ANY: Literal["any"] = "any"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FrameworkSettings(_Section):
    """`name` and `version` describe the config (logged as params); `enable_metrics: false`
    stops sending requests to metrics collectors."""

    name: str = "orchestra"
    version: str = "1.0.0"
    seed: int = 0
    enable_metrics: bool = True
    default_task_type: str = "general"
    metrics_collectors: list[str] = Field(default_factory=list)
    """Entry-point names (group `orchestra.metrics_collectors`) to attach at start-up."""


class PriceSettings(_Section):
    """Per-1M-token prices in USD."""

    input_per_1m: float = Field(ge=0)
    output_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(default=None, ge=0)


class LatencySettings(_Section):
    """Simulated latency: time to first token plus output tokens at a rate, with lognormal jitter."""

    ttft_ms: float = Field(ge=0)
    tokens_per_s: float = Field(gt=0)
    jitter: float = Field(default=0.25, ge=0)


class RateLimitSettings(_Section):
    """At most `requests` calls and `tokens` tokens per `per_seconds`, `max_concurrent` at once."""

    requests: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    per_seconds: float = Field(default=60.0, gt=0)
    max_concurrent: int | None = Field(default=None, ge=1)


class RetrySettings(_Section):
    max_attempts: int = Field(default=3, ge=1)
    initial_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=20.0, ge=0)
    max_retry_after_s: float = Field(default=60.0, ge=0)


class CircuitBreakerSettings(_Section):
    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, ge=0)
    max_cooldown_s: float = Field(default=300.0, ge=0)


class ProviderSettings(_Section):
    """One configured provider instance (`models.<name>`).

    Replay providers use `dataset` and `model`; `time_scale` > 0 makes them sleep for their
    simulated latency times that factor. `params` are passed to the API with every request.
    """

    type: ModelProvider | None = None
    default_model: str | None = Field(default=None, alias="model")
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    base_url: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    dataset: str | None = None
    time_scale: float = Field(default=0.0, ge=0.0)
    price: PriceSettings | None = None
    latency: LatencySettings | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    rate_limit: RateLimitSettings | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    retry: RetrySettings | None = None
    plugin: str | None = None
    """A connector from an installed package: the entry point's name in `orchestra.connectors`."""


class DatasetSettings(_Section):
    """A recorded table for replay: which columns hold prompt, model, output and quality.

    Quality is stored as `(value + quality_offset) * quality_scale`, so AlpacaEval's
    preference in {1, 1.5, 2} becomes a win score in {0, 0.5, 1} with `quality_offset: -1`.
    """

    path: str
    prompt_column: str = "prompt"
    model_column: str = "model"
    output_column: str = "output"
    quality_column: str | None = None
    quality_offset: float = 0.0
    quality_scale: float = 1.0
    group_column: str | None = None
    recorded_on: date | None = None
    """When the outputs were recorded: replays are priced at the catalogue's list price of that day
    (None: today's price)."""


class RoutingRule(_Section):
    """First matching rule wins: task type ("any" matches all), complexity ("any" matches all)."""

    task_type: str = ANY
    complexity: TaskComplexity | Literal["any"] = ANY
    providers: list[str] = Field(min_length=1)
    require_consensus: bool = False
    min_providers: int | None = Field(default=None, ge=1)
    system_prompt: str | None = None
    """The system prompt of requests this rule routes (unless the call passes one): text, or a
    reference into MLflow's Prompt Registry, `prompts:/name/3` or `prompts:/name@production`,
    resolved when `Orchestra` starts (see `orchestra.prompts`)."""
    _system_prompt_source: str | None = PrivateAttr(default=None)
    """The registry version a resolved reference came from (`prompts:/name/3`), logged as a tag."""

    def matches(self, task_type: str, complexity: TaskComplexity) -> bool:
        return self.task_type in (ANY, task_type) and self.complexity in (ANY, complexity)


class RoutingWeights(_Section):
    quality: float = 1.0
    cost: float = 0.2
    latency: float = 0.1


class PerformanceRoutingSettings(_Section):
    """History-based routing: decay, window, trust threshold, exploration, score weights."""

    window_hours: float | None = Field(default=168.0, gt=0)
    half_life_hours: float | None = Field(default=24.0, gt=0)
    min_samples: int = Field(default=20, ge=1)
    exploration: Literal["thompson", "epsilon_greedy", "none"] = "thompson"
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0)
    epsilon_decay: bool = True
    """Epsilon-greedy explores less as evidence grows: epsilon x sqrt(warm-up size / observations)."""
    weights: RoutingWeights = Field(default_factory=RoutingWeights)
    load_history: bool = True


class CostAwareSettings(_Section):
    target_quality: float = Field(default=0.5, ge=0.0, le=1.0)
    min_samples: int = Field(default=20, ge=1)


class LearnedRoutingSettings(_Section):
    """The `learned` strategy's policy: a folder written by `KNNRoutingPolicy.save` (or by
    `orchestra improve`); `cost_weight` overrides the trade-off it was saved with."""

    policy: str | None = None
    cost_weight: float | None = Field(default=None, ge=0)
    budget_per_1k: float | None = Field(default=None, gt=0)
    """Target spend in USD per 1,000 requests: `orchestra improve` calibrates the cost weight to
    it on the select split, and the router warns when the realised spend drifts beyond
    `routing.budget_tolerance`."""
    quality_target: float | None = Field(default=None, ge=0.0, le=1.0)
    """The alternative to a budget: the cheapest trade-off whose mean quality reaches this."""

    @model_validator(mode="after")
    def _one_target(self) -> LearnedRoutingSettings:
        if self.budget_per_1k is not None and self.quality_target is not None:
            raise ValueError("set budget_per_1k or quality_target, not both")
        return self


class CascadeSettings(_Section):
    """The `cascade` strategy: a policy folder written by `orchestra improve` (or
    `CascadePolicy.save`); `threshold` overrides its learned acceptance threshold; a budget or a
    quality target is what `orchestra improve` learns the threshold for."""

    policy: str | None = None
    threshold: float | None = Field(default=None, ge=0.0)
    budget_per_1k: float | None = Field(default=None, gt=0)
    quality_target: float | None = Field(default=None, ge=0.0, le=1.0)
    max_stages: int = Field(default=3, ge=2)

    @model_validator(mode="after")
    def _one_target(self) -> CascadeSettings:
        if self.budget_per_1k is not None and self.quality_target is not None:
            raise ValueError("set budget_per_1k or quality_target, not both")
        return self


class EvaluatorSettings(_Section):
    """A complexity evaluator for a task type: heuristic, embedding (kNN on labelled `examples`,
    a CSV/parquet with prompt and complexity columns), llm (graded by `provider`), or the name of
    one installed through the `orchestra.complexity_evaluators` entry-point group."""

    type: str = "heuristic"
    examples: str | None = None
    k: int = Field(default=7, ge=1)
    provider: str | None = None
    simple_below: float = Field(default=0.35, ge=0.0, le=1.0)


class RoutingSettings(_Section):
    default_strategy: str = "rules"
    complexity_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    require_consensus_for_complex: bool = False
    rules: list[RoutingRule] = Field(default_factory=list)
    performance: PerformanceRoutingSettings = Field(default_factory=PerformanceRoutingSettings)
    cost_aware: CostAwareSettings = Field(default_factory=CostAwareSettings)
    learned: LearnedRoutingSettings = Field(default_factory=LearnedRoutingSettings)
    evaluators: dict[str, EvaluatorSettings] = Field(default_factory=dict)
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)
    budget_tolerance: float = Field(default=0.2, gt=0.0)
    """Warn (and log the `routing.spend_drift` metric) when the realised spend per 1k requests is
    further than this share from the learned or cascade budget."""


class ConsensusSettings(_Section):
    """Which strategy per task type, its options, and what happens when answers disagree.

    Below `similarity_threshold` (agreement) or `confidence_threshold` an outcome is flagged
    `low_agreement`; `low_agreement_policy` then returns it flagged (`flag`), asks
    `extra_providers` more providers and decides again (`ask_more`), or raises `ConsensusNotReached`.
    `timeout_s` bounds the wait for answers; fewer than two in time raises `ConsensusTimeout`.
    """

    default_strategy: str = "lexical"
    similarity_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    confidence_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    per_task_type: dict[str, str] = Field(default_factory=dict)
    low_agreement_policy: Literal["flag", "ask_more", "raise"] = "flag"
    extra_providers: int = Field(default=1, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)


class PromptImprovementSettings(_Section):
    """`orchestra improve prompts --task-type T`: better system prompts for a task type's rule.

    `proposer` (a provider under models) proposes new prompts from logged low-quality requests
    (quality below `low_quality`, by the logged label or by `scorer`); GEPA searches with at most
    `max_evaluations` requests through `process_request`; the best prompt on the select split
    faces the current one on the confirm split, through the gate of `orchestra improve`. The
    winner becomes a new version of prompt `registry_name` (default `<framework.name>-<task
    type>`) in MLflow's Prompt Registry, and `alias` is moved to it."""

    proposer: str | None = None
    scorer: str | None = None
    """`module:function` called as f(prompt, response) -> float | None (default: quality labels)."""
    low_quality: float = Field(default=0.5, ge=0.0, le=1.0)
    max_evaluations: int = Field(default=200, ge=1)
    minibatch: int = Field(default=3, ge=1)
    registry_name: str | None = None
    alias: str = "production"


class ImprovementSettings(_Section):
    """`orchestra improve`: learn a router from logged calls and write back a better config.

    The learned config is written back when, on held-out prompts, its quality is no worse than
    the current config's by more than `quality_margin` with confidence `auto_apply_threshold`
    (one-sided paired t-test) and it is better in quality or cheaper (`min_saving`). The defaults
    (margin 0.05, confidence 0.9, min_effect 0.15, min_saving 0.1) keep false write-backs at or
    below 5%, as measured by `benchmarks/improve_replication.py` on the shipped AlpacaEval and
    GSM8K data.

    `analysis_interval` (hours) is the period of `orchestra improve --schedule`.
    """

    analysis_interval: float = Field(default=24, gt=0)
    auto_apply_threshold: float = Field(default=0.9, ge=0.5, lt=1.0)
    min_data_points: int = Field(default=100, ge=1)
    holdout_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    folds: int = Field(default=5, ge=2)
    features: Literal["hashing", "minilm"] = "hashing"
    k: int = Field(default=25, ge=1)
    cost_weights: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0])
    cost_slack: float = Field(default=0.0, ge=0.0)
    quality_margin: float = Field(default=0.05, ge=0.0, le=1.0)
    policy_dir: str = "models/learned_router"
    select_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Prompts (by hash) for choosing the cost weight or cascade threshold; `holdout_fraction` go
    to the confirm split (used once, for the decision), the rest to fitting."""
    min_effect: float = Field(default=0.15, gt=0.0, le=1.0)
    """The quality difference the confirm split must be able to detect (with power `power`,
    one-sided at 1 - auto_apply_threshold); when it cannot, the evidence is too thin to act on:
    the loop proposes a config and does not apply it."""
    power: float = Field(default=0.8, gt=0.5, lt=1.0)
    min_saving: float = Field(default=0.1, ge=0.0, lt=1.0)
    """A cost gain counts when the mean cost falls by at least this share; a quality gain when it
    is better at `auto_apply_threshold` (one-sided)."""
    candidates: list[Literal["learned", "cascade"]] = Field(default_factory=lambda: ["learned", "cascade"])
    objective: Literal["best_quality", "match_quality"] = "best_quality"
    """Without a budget or quality target: the best candidate at no more than the current
    config's cost on the select split (`best_quality`), or the cheapest one at least as good as
    the current config there (`match_quality`)."""
    calibration: Literal["isotonic", "platt"] = "platt"
    split_seed: int = 0
    prompts: PromptImprovementSettings = Field(default_factory=PromptImprovementSettings)


class PerformanceSettings(_Section):
    """Timeouts, retries, circuit breaking, budgets and the response cache.

    `request_timeout` bounds a whole request (retries and failover included); a provider's own
    `timeout` (models.<name>.timeout) bounds each attempt.
    """

    max_concurrent_requests: int = Field(default=50, ge=1)
    request_timeout: float = Field(default=30.0, gt=0)
    enable_response_caching: bool = False
    cache_ttl: float = Field(default=3600, gt=0)
    cache_backend: Literal["sqlite", "redis"] = "sqlite"
    cache_path: str = ".orchestra/cache.sqlite"
    redis_url: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)
    circuit_breaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)
    run_budget_usd: float | None = Field(default=None, ge=0)
    expected_output_tokens: int = Field(default=1024, ge=1)


class PricingSettings(_Section):
    table: str | None = None
    overrides: dict[str, PriceSettings] = Field(default_factory=dict)


class Settings(_Section):
    """The whole `config.yaml`."""

    framework: FrameworkSettings = Field(default_factory=FrameworkSettings)
    models: dict[str, ProviderSettings] = Field(default_factory=dict)
    datasets: dict[str, DatasetSettings] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)
    improvement: ImprovementSettings = Field(default_factory=ImprovementSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    experiments: dict[str, ExperimentSettings] = Field(default_factory=dict)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config are resolved against."""
        return self._base_dir

    def resolve_path(self, path: str | Path) -> Path:
        """`path` made absolute against the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self._base_dir / candidate).resolve()

    @model_validator(mode="before")
    @classmethod
    def _current_spellings(cls, data: Any) -> Any:
        from orchestra.compat import rewrite_config

        return rewrite_config(data) if isinstance(data, dict) else data

    @field_validator("models")
    @classmethod
    def _infer_provider_types(cls, models: dict[str, ProviderSettings]) -> dict:
        known = {member.value for member in ModelProvider}
        for name, provider in models.items():
            if provider.type is None and provider.plugin is not None:
                provider.type = ModelProvider.CUSTOM
            elif provider.type is None:
                if name not in known:
                    allowed = ", ".join(sorted(known))
                    raise ValueError(f"models.{name}.type is required (one of: {allowed})")
                provider.type = ModelProvider(name)
        return models

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        names = set(self.models)
        for index, rule in enumerate(self.routing.rules):
            unknown = [p for p in rule.providers if p not in names]
            if unknown and names:
                raise ValueError(
                    f"routing.rules.{index}.providers names {unknown}, "
                    f"which are not under models (configured: {sorted(names)})"
                )
        for name, provider in self.models.items():
            if provider.type == ModelProvider.REPLAY:
                if provider.dataset is None or provider.default_model is None:
                    raise ValueError(f"models.{name}: a replay provider needs dataset and model")
                if provider.dataset not in self.datasets:
                    raise ValueError(
                        f"models.{name}.dataset is {provider.dataset!r}, "
                        f"which is not under datasets (configured: {sorted(self.datasets)})"
                    )
        return self
