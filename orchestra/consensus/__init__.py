"""Consensus: strategies that pick one answer from several, and their registry."""

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.lexical import LexicalConsensus, MedoidConsensus
from orchestra.consensus.manager import ConsensusManager

__all__ = [
    "ConsensusManager",
    "ConsensusOutcome",
    "ConsensusStrategy",
    "LexicalConsensus",
    "MedoidConsensus",
]
