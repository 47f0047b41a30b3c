"""Every older way of saying something, in one place: old names, old config spellings, the
original consensus interface and `process_request(stream=True)`.

Each keeps working and says once, with a `DeprecationWarning`, what to write instead:

    AIOrchestrationFramework      -> Orchestra
    DatabaseConnectionError       -> TrackingStoreError
    framework.enable_caching                    -> performance.enable_response_caching
    performance.models.<name>.timeout           -> models.<name>.timeout
    performance.models.<name>.max_concurrent    -> models.<name>.rate_limit.max_concurrent
    consensus.strategies.voting.weight_by_confidence: true -> ....voting.weight_by: confidence
    routing.rules[i].task_type: "*"             -> task_type: any
    improvement.enable, performance.connection_pool_size: do nothing
    process_request(..., stream=True)           -> process_request_stream(...)
    a strategy with find_consensus + calculate_confidence -> ConsensusStrategy.decide

Old config spellings are rewritten by `rewrite_config` before validation (`Settings` calls it),
so the rest of orchestra only ever sees the current spelling.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestra.errors import ConfigError, TrackingStoreError
from orchestra.logs import get_logger

if TYPE_CHECKING:
    from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
    from orchestra.consensus.context import TaskContext
    from orchestra.types import ModelResponse

logger = get_logger("orchestra.config")

DatabaseConnectionError = TrackingStoreError
"""The seed's name for `TrackingStoreError`."""

_NO_EFFECT = {
    ("improvement", "enable"): "Orchestra itself runs no background improvement; "
    "`orchestra improve --schedule` runs the cycle every improvement.analysis_interval hours",
    ("performance", "connection_pool_size"): "each provider SDK keeps its own connection pool",
}
"""Settings of the seed's config that orchestra accepts and ignores, and why."""


def __getattr__(name: str) -> Any:
    if name == "AIOrchestrationFramework":  # imported lazily: the engine imports this module
        from orchestra.engine.orchestrator import Orchestra

        return Orchestra
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn (a `DeprecationWarning`) that `old` is now said `new`."""
    warnings.warn(f"{old} is deprecated: {new}", DeprecationWarning, stacklevel=stacklevel)


def _config_deprecated(old: str, new: str) -> None:
    """A deprecation in a config file: also logged, since a config's reader is not its writer
    (Python hides a `DeprecationWarning` raised inside a library)."""
    logger.warning("config: %s is deprecated: %s", old, new)
    deprecated(old, new, stacklevel=4)


# ---- config -----------------------------------------------------------------------------------


def rewrite_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` (a config as loaded from YAML) with every old spelling rewritten to the current one,
    each with a `DeprecationWarning`; settings that do nothing are dropped with a warning. The
    input is not modified.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     rewrite_config({"framework": {"enable_caching": True}})
    {'framework': {}, 'performance': {'enable_response_caching': True}}
    """
    config = copy.deepcopy(dict(raw))
    framework = _section(config, "framework")
    if framework is not None and "enable_caching" in framework:
        enabled = framework.pop("enable_caching")
        _config_deprecated("framework.enable_caching", "write performance.enable_response_caching")
        if enabled:
            config.setdefault("performance", {})["enable_response_caching"] = True
    _rewrite_performance_models(config)
    voting = _section(_section(_section(config, "consensus"), "strategies"), "voting")
    if voting is not None and "weight_by_confidence" in voting:
        weighted = voting.pop("weight_by_confidence")
        _config_deprecated(
            "consensus.strategies.voting.weight_by_confidence",
            "write consensus.strategies.voting.weight_by: confidence",
        )
        if weighted:
            voting.setdefault("weight_by", "confidence")
    routing = _section(config, "routing")
    for index, rule in enumerate((routing or {}).get("rules") or []):
        if isinstance(rule, dict) and rule.get("task_type") == "*":
            _config_deprecated(f'routing.rules.{index}.task_type: "*"', "write task_type: any")
            rule["task_type"] = "any"
    for (section, key), why in _NO_EFFECT.items():
        values = _section(config, section)
        if values is not None and key in values:
            value = values.pop(key)
            if section == "improvement" and key == "enable" and not value:
                continue  # `enable: false` asks for what happens anyway
            _config_deprecated(f"{section}.{key}", f"it has no effect ({why})")
    return config


def _rewrite_performance_models(config: dict[str, Any]) -> None:
    performance = _section(config, "performance")
    per_model = performance.pop("models", None) if performance is not None else None
    if not per_model:
        return
    if not isinstance(per_model, Mapping):
        raise ConfigError("performance.models must map provider names to {timeout, max_concurrent}")
    models = config.setdefault("models", {})
    for name, values in per_model.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"performance.models.{name} must be a mapping (timeout, max_concurrent)")
        unknown = sorted(set(values) - {"timeout", "max_concurrent"})
        if unknown:
            raise ConfigError(
                f"performance.models.{name}: unknown key(s) {unknown} (allowed here: max_concurrent, timeout)"
            )
        if not isinstance(models, dict) or not isinstance(models.get(name), dict):
            raise ConfigError(
                f"performance.models.{name} names no provider under models; write its settings as "
                f"models.{name}.timeout and models.{name}.rate_limit.max_concurrent"
            )
        provider = models[name]
        if "timeout" in values:
            _config_deprecated(f"performance.models.{name}.timeout", f"write models.{name}.timeout")
            provider.setdefault("timeout", values["timeout"])
        if values.get("max_concurrent") is not None:
            _config_deprecated(
                f"performance.models.{name}.max_concurrent", f"write models.{name}.rate_limit.max_concurrent"
            )
            limits = provider.get("rate_limit")
            if limits is None:
                limits = provider["rate_limit"] = {}
            if isinstance(limits, dict) and not limits.get("max_concurrent"):
                limits["max_concurrent"] = values["max_concurrent"]


def _section(config: Mapping[str, Any] | None, key: str) -> dict[str, Any] | None:
    value = config.get(key) if isinstance(config, Mapping) else None
    return value if isinstance(value, dict) else None


# ---- consensus --------------------------------------------------------------------------------


async def legacy_outcome(
    strategy: ConsensusStrategy,
    responses: list[ModelResponse],
    context: TaskContext,
    *,
    method: str,
    confidence_threshold: float,
) -> ConsensusOutcome:
    """The outcome of a strategy of the original interface: the one it attached to the chosen
    response (`metadata["consensus"]`), else one built from its choice and `calculate_confidence`
    (flagged low below `confidence_threshold`)."""
    from orchestra.consensus.base import OUTCOME_KEY, ConsensusOutcome
    from orchestra.errors import ConsensusError

    chosen = await strategy.find_consensus(responses, context.as_dict())
    outcome = chosen.metadata.get(OUTCOME_KEY)
    providers = [r.provider for r in responses]
    if not isinstance(outcome, ConsensusOutcome):
        if chosen.provider not in providers:
            raise ConsensusError(
                f"consensus strategy {method!r} chose an answer of {chosen.provider!r}, "
                f"which is not among the answers ({', '.join(providers)})"
            )
        confidence = float(
            chosen.confidence_score
            if chosen.confidence_score is not None
            else strategy.calculate_confidence(responses)
        )
        outcome = ConsensusOutcome(
            method=method,
            chosen_index=providers.index(chosen.provider),
            chosen_provider=chosen.provider,
            confidence=confidence,
            agreement=confidence,
            providers=providers,
            low_agreement=confidence < confidence_threshold,
        )
    index = outcome.chosen_index
    if 0 <= index < len(responses) and chosen.content != responses[index].content:
        outcome = replace(outcome, content=chosen.content)
    return outcome
