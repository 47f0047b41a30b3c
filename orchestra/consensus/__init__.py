"""Consensus: strategies that pick one answer from several, and their registry."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
    from orchestra.consensus.confidence import ConfidenceConsensus
    from orchestra.consensus.context import TaskContext, execution_check, structured_output
    from orchestra.consensus.embeddings import EmbeddingSpec
    from orchestra.consensus.execution import ExecutionConsensus, rank_by_execution
    from orchestra.consensus.lexical import LexicalConsensus, MedoidConsensus
    from orchestra.consensus.manager import ConsensusManager
    from orchestra.consensus.similarity import SimilarityConsensus
    from orchestra.consensus.structured import StructuredConsensus
    from orchestra.consensus.voting import VotingConsensus, normalise_short_answer
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.consensus.base": ["ConsensusOutcome", "ConsensusStrategy"],
            "orchestra.consensus.confidence": ["ConfidenceConsensus"],
            "orchestra.consensus.context": ["TaskContext", "execution_check", "structured_output"],
            "orchestra.consensus.embeddings": ["EmbeddingSpec"],
            "orchestra.consensus.execution": ["ExecutionConsensus", "rank_by_execution"],
            "orchestra.consensus.lexical": ["LexicalConsensus", "MedoidConsensus"],
            "orchestra.consensus.manager": ["ConsensusManager"],
            "orchestra.consensus.similarity": ["SimilarityConsensus"],
            "orchestra.consensus.structured": ["StructuredConsensus"],
            "orchestra.consensus.voting": ["VotingConsensus", "normalise_short_answer"],
        },
    )

__all__ = [
    "ConfidenceConsensus",
    "ConsensusManager",
    "ConsensusOutcome",
    "ConsensusStrategy",
    "EmbeddingSpec",
    "ExecutionConsensus",
    "LexicalConsensus",
    "MedoidConsensus",
    "SimilarityConsensus",
    "StructuredConsensus",
    "TaskContext",
    "VotingConsensus",
    "execution_check",
    "normalise_short_answer",
    "rank_by_execution",
    "structured_output",
]
