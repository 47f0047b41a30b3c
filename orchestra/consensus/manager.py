"""Consensus strategies by name, chosen per task type from config, with threshold policies.

Built in: `lexical` (TF-IDF medoid), `similarity` (embedding medoid), `voting`, `confidence`,
`execution`, `structured`.
More come from code (`register_strategy`) or installed packages (entry-point group
`orchestra.consensus_strategies`).

    orch.consensus_manager.register_strategy("longest", LongestAnswer())
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestra.compat import legacy_outcome
from orchestra.config.schema import ConsensusSettings
from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.confidence import ConfidenceConsensus
from orchestra.consensus.context import TaskContext
from orchestra.consensus.embeddings import EmbeddingSpec
from orchestra.consensus.execution import ExecutionConsensus
from orchestra.consensus.lexical import LexicalConsensus
from orchestra.consensus.similarity import SimilarityConsensus
from orchestra.consensus.structured import StructuredConsensus
from orchestra.consensus.voting import VotingConsensus
from orchestra.entrypoints import PluginError, discover
from orchestra.errors import ConfigError
from orchestra.types import ModelResponse

STRATEGIES_GROUP = "orchestra.consensus_strategies"
"""The entry-point group of consensus strategies from installed packages."""


class ConsensusManager:
    """Name -> strategy; `strategy_for(task_type)` follows `consensus.per_task_type`."""

    def __init__(self, settings: ConsensusSettings, resolve_path: Callable[[str], Path] = Path) -> None:
        self.settings = settings
        self._strategies: dict[str, ConsensusStrategy] = {}
        for name, strategy in _builtins(settings, resolve_path).items():
            self.register_strategy(name, strategy)
        plugins, self.plugin_errors = discover(STRATEGIES_GROUP, ConsensusStrategy)
        for name, strategy in plugins.items():
            self.register_strategy(name, strategy)

    def register_strategy(self, name: str, strategy: ConsensusStrategy) -> None:
        if not isinstance(strategy, ConsensusStrategy):
            raise TypeError(f"{strategy!r} is not a ConsensusStrategy")
        self._strategies[name] = strategy

    def get(self, name: str) -> ConsensusStrategy:
        if name not in self._strategies:
            raise ConfigError(f"consensus strategy {name!r} is not registered ({', '.join(self.names())})")
        return self._strategies[name]

    def names(self) -> list[str]:
        return sorted(self._strategies)

    def check_configured(self) -> None:
        """Fail early when config names a strategy that is not registered."""
        wanted = {"consensus.default_strategy": self.settings.default_strategy}
        wanted |= {f"consensus.per_task_type.{k}": v for k, v in self.settings.per_task_type.items()}
        for key, name in wanted.items():
            if name not in self._strategies:
                raise ConfigError(f"{key} is {name!r}; available strategies: {', '.join(self.names())}")

    def strategy_for(self, task_type: str) -> tuple[str, ConsensusStrategy]:
        name = self.settings.per_task_type.get(task_type, self.settings.default_strategy)
        return name, self.get(name)

    def prepare(self, task_type: str, response: ModelResponse) -> None:
        """Let the task type's strategy start on an answer as soon as it arrives (if it can)."""
        _, strategy = self.strategy_for(task_type)
        prepare = getattr(strategy, "prepare", None)
        if prepare is not None:
            prepare(response)

    async def decide(
        self, responses: list[ModelResponse], context: TaskContext | Mapping[str, Any]
    ) -> tuple[ModelResponse, ConsensusOutcome]:
        """The task type's strategy's outcome, and the answer it chose (with the outcome's
        confidence, and its text as the strategy rewrote it)."""
        context = TaskContext.from_mapping(context)
        name, strategy = self.strategy_for(context.task_type)
        if strategy.implements_decide():
            outcome = await strategy.decide(responses, context)
        else:  # the original interface: the outcome falls back to the registered name and threshold
            outcome = await legacy_outcome(
                strategy,
                responses,
                context,
                method=name,
                confidence_threshold=self.settings.confidence_threshold,
            )
        return outcome.chosen(responses), outcome


def _builtins(
    settings: ConsensusSettings, resolve_path: Callable[[str], Path]
) -> dict[str, ConsensusStrategy]:
    options = settings.strategies
    thresholds = {
        "similarity_threshold": settings.similarity_threshold,
        "confidence_threshold": settings.confidence_threshold,
    }
    similarity_options = dict(options.get("similarity", {}))
    threshold = similarity_options.pop("threshold", None)
    cache_path = similarity_options.pop("cache_path", ".orchestra/embeddings.sqlite")
    try:
        spec = EmbeddingSpec(**similarity_options)
    except TypeError as err:
        raise ConfigError(
            f"consensus.strategies.similarity: {err} (allowed: model, backend, "
            "max_seq_length, cache_dir, threads, cache_path, threshold)"
        ) from err
    similarity = SimilarityConsensus(
        spec,
        cache_path=resolve_path(cache_path) if cache_path else None,
        **(thresholds | ({"similarity_threshold": threshold} if threshold is not None else {})),
    )
    voting_options = dict(options.get("voting", {}))
    confidence_options = dict(options.get("confidence", {}))
    try:
        voting = VotingConsensus(similarity=similarity, **voting_options)
        confidence = ConfidenceConsensus(
            similarity=similarity, confidence_threshold=settings.confidence_threshold, **confidence_options
        )
    except TypeError as err:
        raise ConfigError(f"consensus.strategies: {err}") from err
    return {
        "lexical": LexicalConsensus(**thresholds),
        "similarity": similarity,
        "voting": voting,
        "confidence": confidence,
        "execution": ExecutionConsensus.from_settings(settings),
        "structured": StructuredConsensus(confidence_threshold=settings.confidence_threshold),
    }


__all__ = ["ConsensusManager", "PluginError"]
