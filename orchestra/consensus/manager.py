"""Consensus strategies by name, chosen per task type from config.

orch.consensus_manager.register_strategy("longest", LongestAnswer())
"""

from __future__ import annotations

from typing import Any

from orchestra.config.schema import ConsensusSettings
from orchestra.consensus.base import OUTCOME_KEY, ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.lexical import LexicalConsensus
from orchestra.errors import ConfigError
from orchestra.types import ModelResponse


class ConsensusManager:
    """Name -> strategy; `strategy_for(task_type)` follows `consensus.per_task_type`."""

    def __init__(self, settings: ConsensusSettings) -> None:
        self.settings = settings
        self._strategies: dict[str, ConsensusStrategy] = {}
        self.register_strategy(
            "lexical",
            LexicalConsensus(
                similarity_threshold=settings.similarity_threshold,
                confidence_threshold=settings.confidence_threshold,
            ),
        )

    def register_strategy(self, name: str, strategy: ConsensusStrategy) -> None:
        if not isinstance(strategy, ConsensusStrategy):
            raise TypeError(f"{strategy!r} is not a ConsensusStrategy")
        self._strategies[name] = strategy

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
        if name not in self._strategies:
            raise ConfigError(f"consensus strategy {name!r} is not registered ({', '.join(self.names())})")
        return name, self._strategies[name]

    async def decide(
        self, responses: list[ModelResponse], task_context: dict[str, Any]
    ) -> tuple[ModelResponse, ConsensusOutcome]:
        """Run the task type's strategy; fill in an outcome when a custom strategy gave none."""
        name, strategy = self.strategy_for(task_context.get("task_type", ""))
        chosen = await strategy.find_consensus(responses, task_context)
        outcome = chosen.metadata.get(OUTCOME_KEY)
        if not isinstance(outcome, ConsensusOutcome):
            providers = [r.provider for r in responses]
            confidence = float(
                chosen.confidence_score
                if chosen.confidence_score is not None
                else strategy.calculate_confidence(responses)
            )
            outcome = ConsensusOutcome(
                method=name,
                chosen_index=providers.index(chosen.provider) if chosen.provider in providers else -1,
                chosen_provider=chosen.provider,
                confidence=confidence,
                agreement=confidence,
                providers=providers,
                low_agreement=confidence < self.settings.confidence_threshold,
            )
        return chosen, outcome
