"""What a router decided, with the probabilities needed for off-policy evaluation later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestra.types import TaskComplexity


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The providers to call for one request, and why.

    `chosen` are called first; `fallbacks` are tried in order when chosen ones fail.
    `propensities[p]` is the probability with which the router chose provider p (1.0/0.0 for
    deterministic strategies), over every candidate considered. `exploring` marks a choice made
    to learn (warm-up, an epsilon draw, a Thompson draw away from the greedy choice); `details`
    holds strategy extras (the spend against a budget, a cascade's stages and escalations).
    """

    task_type: str
    complexity: TaskComplexity
    complexity_score: float
    strategy: str
    chosen: list[str]
    fallbacks: list[str]
    require_consensus: bool
    min_providers: int
    reason: str
    candidate_scores: dict[str, float] = field(default_factory=dict)
    propensities: dict[str, float] = field(default_factory=dict)
    rule_index: int | None = None
    evaluator: str = "heuristic"
    exploring: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_consensus(self) -> bool:
        """Whether the answers are to be reconciled: consensus asked for, over several providers."""
        return self.require_consensus and len(self.chosen) > 1

    def as_dict(self) -> dict[str, Any]:
        """A plain-JSON dict (built field by field: `dataclasses.asdict` deep-copies, and is slow)."""
        return {
            "task_type": self.task_type,
            "complexity": self.complexity.value,
            "complexity_score": self.complexity_score,
            "strategy": self.strategy,
            "chosen": list(self.chosen),
            "fallbacks": list(self.fallbacks),
            "require_consensus": self.require_consensus,
            "min_providers": self.min_providers,
            "reason": self.reason,
            "candidate_scores": dict(self.candidate_scores),
            "propensities": dict(self.propensities),
            "rule_index": self.rule_index,
            "evaluator": self.evaluator,
            "exploring": self.exploring,
            **({"details": dict(self.details)} if self.details else {}),
        }
