"""Routing parts built from config: complexity evaluators per task type, the learned policy.

routing:
  evaluators:
    support: {type: embedding, examples: data/support_labels.csv, k: 7}
    code_review: {type: llm, provider: mistral-7b}
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from orchestra.config.schema import RoutingSettings, Settings
from orchestra.entrypoints import discover
from orchestra.errors import ConfigError
from orchestra.providers.base import BaseModelConnector
from orchestra.routing.cascade import CascadePolicy
from orchestra.routing.complexity import ComplexityEvaluator, HeuristicComplexityEvaluator
from orchestra.routing.evaluators import EmbeddingComplexityEvaluator, LLMComplexityEvaluator
from orchestra.routing.learned import KNNRoutingPolicy

EVALUATORS_GROUP = "orchestra.complexity_evaluators"
"""The entry-point group of complexity evaluators from installed packages."""

BUILT_IN = ("heuristic", "embedding", "llm")


def load_learned_policy(settings: Settings) -> KNNRoutingPolicy:
    """The policy `routing.learned.policy` names, with its configured cost weight."""
    learned = settings.routing.learned
    assert learned.policy is not None
    policy = KNNRoutingPolicy.load(settings.resolve_path(learned.policy))
    return policy if learned.cost_weight is None else policy.with_cost_weight(learned.cost_weight)


def load_cascade_policy(settings: Settings) -> CascadePolicy:
    """The cascade `routing.cascade.policy` names, with its configured threshold (if any)."""
    cascade = settings.routing.cascade
    assert cascade.policy is not None
    policy = CascadePolicy.load(settings.resolve_path(cascade.policy))
    return policy if cascade.threshold is None else policy.with_threshold(cascade.threshold)


def build_evaluators(
    settings: RoutingSettings,
    connector: Callable[[str], BaseModelConnector],
    resolve_path: Callable[[str], Path],
) -> dict[str, ComplexityEvaluator]:
    """task type -> evaluator, for every task type configured under `routing.evaluators`."""
    plugins, _ = discover(EVALUATORS_GROUP, ComplexityEvaluator) if settings.evaluators else ({}, [])
    evaluators: dict[str, ComplexityEvaluator] = {}
    for task_type, spec in settings.evaluators.items():
        key = f"routing.evaluators.{task_type}"
        heuristic = HeuristicComplexityEvaluator(
            simple_below=spec.simple_below, complex_from=settings.complexity_threshold
        )
        if spec.type == "heuristic":
            evaluators[task_type] = heuristic
        elif spec.type == "embedding":
            if not spec.examples:
                raise ConfigError(f"{key}: an embedding evaluator needs examples (a labelled CSV or parquet)")
            evaluators[task_type] = EmbeddingComplexityEvaluator.fit(
                str(resolve_path(spec.examples)),
                k=spec.k,
                simple_below=spec.simple_below,
                complex_from=settings.complexity_threshold,
            )
        elif spec.type == "llm":
            if not spec.provider:
                raise ConfigError(f"{key}: an llm evaluator needs provider (the model that grades)")
            evaluators[task_type] = LLMComplexityEvaluator(
                partial(connector, spec.provider), fallback=heuristic
            )
        elif spec.type in plugins:
            evaluators[task_type] = plugins[spec.type]
        else:
            available = ", ".join([*BUILT_IN, *sorted(plugins)])
            raise ConfigError(f"{key}.type is {spec.type!r}; available: {available}")
    return evaluators
