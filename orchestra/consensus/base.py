"""The consensus interface: one method, `decide`, from the answers to a typed `ConsensusOutcome`.

    class Longest(ConsensusStrategy):
        name = "longest"

        async def decide(self, responses, context):
            index = max(range(len(responses)), key=lambda i: len(responses[i].content))  # ties: first
            return ConsensusOutcome.pick(self.name, responses, index, confidence=1.0, agreement=0.0)

`decide` is pure: it reads the answers and the `TaskContext` and returns the outcome; it mutates
nothing. Strategies written against the original two-method interface (`find_consensus`
returning the chosen response with its outcome under `metadata["consensus"]`, plus
`calculate_confidence`) keep working: `decide` falls back to them (`orchestra.compat`), and
`find_consensus` / `calculate_confidence` remain callable on every strategy.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestra.consensus.context import TaskContext
from orchestra.types import ModelResponse

OUTCOME_KEY = "consensus"
"""Where the original interface put the outcome: `response.metadata["consensus"]`."""


@dataclass(frozen=True)
class ConsensusOutcome:
    """How a consensus was reached: method, scores, who agreed, and whether agreement was low.

    `content` is the answer's text when the strategy rewrote it (structured consensus returns the
    winner as canonical JSON); None means the chosen answer as it came. It is not part of
    `as_dict()`: the request's response holds it.
    """

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
    content: str | None = None

    @classmethod
    def pick(
        cls,
        method: str,
        responses: Sequence[ModelResponse],
        index: int,
        *,
        confidence: float,
        agreement: float,
        **fields: Any,
    ) -> ConsensusOutcome:
        """The outcome choosing `responses[index]` (providers filled in from the answers)."""
        providers = [r.provider for r in responses]
        return cls(method, index, providers[index], confidence, agreement, providers, **fields)

    def chosen(self, responses: Sequence[ModelResponse]) -> ModelResponse:
        """The chosen answer as returned: its text rewritten if the strategy did, with the
        outcome's confidence."""
        response = responses[self.chosen_index]
        update: dict[str, Any] = {"confidence_score": self.confidence}
        if self.content is not None:
            update["content"] = self.content
        return response.model_copy(update=update)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (what is logged with the request), without `content`."""
        data = asdict(self)
        del data["content"]
        return data


class ConsensusStrategy(ABC):  # noqa: B024 (two interfaces: either method may be the one overridden)
    """Pick one answer from several: implement `decide` (pure, with a documented tie rule).

    A subclass overrides `decide`, or (the original interface) `find_consensus`.
    """

    name = "custom"

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The outcome for `responses` (at least one). The default serves strategies of the original
        interface: it calls their `find_consensus` and reads or builds the outcome."""
        from orchestra.compat import legacy_outcome

        if type(self).find_consensus is ConsensusStrategy.find_consensus:
            raise TypeError(f"{type(self).__name__} implements neither decide nor find_consensus")
        threshold = float(getattr(self, "confidence_threshold", 0.7))
        return await legacy_outcome(
            self, responses, context, method=self.name, confidence_threshold=threshold
        )

    @classmethod
    def implements_decide(cls) -> bool:
        """Whether the strategy decides itself (False: only the original interface)."""
        return cls.decide is not ConsensusStrategy.decide

    # ---- the original interface, kept for callers (every strategy has it) -------------------

    async def find_consensus(
        self, responses: list[ModelResponse], task_context: Mapping[str, Any] | TaskContext
    ) -> ModelResponse:
        """The chosen response, with its `ConsensusOutcome` under metadata["consensus"]."""
        outcome = await self.decide(responses, TaskContext.from_mapping(task_context))
        return self.with_outcome(outcome.chosen(responses), outcome)

    def calculate_confidence(self, responses: list[ModelResponse]) -> float:
        """Confidence in [0, 1] that the answers agree (runs `decide`)."""
        from orchestra.sync import run_sync

        if not responses:
            return 0.0
        return run_sync(self.decide(responses, TaskContext.for_request("", "", None))).confidence

    @staticmethod
    def with_outcome(response: ModelResponse, outcome: ConsensusOutcome) -> ModelResponse:
        """A copy of `response` carrying `outcome` and its confidence (the original interface)."""
        metadata = {**response.metadata, OUTCOME_KEY: outcome}
        return response.model_copy(update={"metadata": metadata, "confidence_score": outcome.confidence})
