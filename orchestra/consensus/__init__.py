"""Consensus: strategies that pick one answer from several, and their registry."""

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
