"""The consensus interface and the outcome every strategy reports.

A strategy returns the chosen `ModelResponse` (the seed's interface) and attaches its
`ConsensusOutcome` under `response.metadata["consensus"]`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestra.types import ModelResponse

OUTCOME_KEY = "consensus"


@dataclass(frozen=True)
class ConsensusOutcome:
    """How a consensus was reached: method, scores, who agreed, and whether agreement was low."""

    method: str
    chosen_index: int
    chosen_provider: str
    confidence: float
    agreement: float
    providers: list[str]
    scores: list[float] = field(default_factory=list)
    similarity: list[list[float]] = field(default_factory=list)
    agreeing_providers: list[str] = field(default_factory=list)
    low_agreement: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConsensusStrategy(ABC):
    """Pick one answer from several; documented, deterministic tie rules."""

    name = "custom"

    @abstractmethod
    async def find_consensus(
        self, responses: list[ModelResponse], task_context: dict[str, Any]
    ) -> ModelResponse:
        """The chosen response, with its `ConsensusOutcome` under metadata["consensus"]."""

    @abstractmethod
    def calculate_confidence(self, responses: list[ModelResponse]) -> float:
        """Confidence in [0, 1] that the answers agree."""

    @staticmethod
    def with_outcome(response: ModelResponse, outcome: ConsensusOutcome) -> ModelResponse:
        """A copy of `response` carrying `outcome` and its confidence."""
        metadata = {**response.metadata, OUTCOME_KEY: outcome}
        return response.model_copy(update={"metadata": metadata, "confidence_score": outcome.confidence})
