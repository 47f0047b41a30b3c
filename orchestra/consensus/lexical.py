"""Lexical consensus: the medoid answer under TF-IDF cosine similarity.

Cheap and dependency-light; the fallback when no embedding model is installed.
Tie rule: among answers whose mean similarity to the others is equal (to 9 decimals, so that
floating-point noise does not decide), the earliest in the routing order wins.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.context import TaskContext
from orchestra.errors import ConsensusError
from orchestra.types import ModelResponse

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tfidf_similarity(texts: list[str]) -> np.ndarray:
    """Pairwise cosine similarity of TF-IDF vectors (1.0 on the diagonal).

    The same vectors as scikit-learn's `TfidfVectorizer(sublinear_tf=True)` (its token pattern,
    lowercasing, smoothed idf and l2 norm; a test checks equality on recorded answers), computed
    directly: for a handful of texts, scikit-learn's input validation costs ~1.7 ms per call,
    this ~0.1 ms.
    """
    counts = [Counter(_TOKEN.findall(text.lower())) for text in texts]
    vocabulary: dict[str, int] = {}
    for document in counts:
        for term in document:
            vocabulary.setdefault(term, len(vocabulary))
    n = len(texts)
    if not vocabulary:  # no word in any text (empty or punctuation only)
        return np.array([[float(a.strip() == b.strip()) for b in texts] for a in texts])
    weights = np.zeros((n, len(vocabulary)))
    for row, document in enumerate(counts):
        if document:
            columns = [vocabulary[term] for term in document]
            weights[row, columns] = 1.0 + np.log(np.fromiter(document.values(), dtype=float))
    document_frequency = np.count_nonzero(weights, axis=0)
    weights *= np.log((1.0 + n) / (1.0 + document_frequency)) + 1.0
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    weights /= np.where(norms == 0.0, 1.0, norms)
    similarity = weights @ weights.T
    np.fill_diagonal(similarity, 1.0)
    return np.clip(similarity, 0.0, 1.0)


class MedoidConsensus(ConsensusStrategy):
    """Choose the answer most similar on average to the others, given a similarity function."""

    name = "medoid"

    def __init__(self, *, similarity_threshold: float = 0.8, confidence_threshold: float = 0.7) -> None:
        self.similarity_threshold = similarity_threshold
        self.confidence_threshold = confidence_threshold

    def similarity(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    async def similarity_matrix(self, texts: list[str]) -> np.ndarray:
        """The pairwise similarity; strategies with slow models override this to run off the loop."""
        return self.similarity(texts)

    def details(self) -> dict[str, Any]:
        """Extra facts for the outcome (e.g. which embedding backend was used)."""
        return {}

    def outcome(self, responses: list[ModelResponse], matrix: np.ndarray | None = None) -> ConsensusOutcome:
        if not responses:
            raise ConsensusError("consensus needs at least one response")
        providers = [r.provider for r in responses]
        if len(responses) == 1:
            return ConsensusOutcome(
                self.name, 0, providers[0], 1.0, 1.0, providers, [1.0], [[1.0]], providers
            )
        if matrix is None:
            matrix = self.similarity([r.content for r in responses])
        n = len(responses)
        off_diagonal = matrix - np.diag(np.diag(matrix))
        mean_to_others = np.round(off_diagonal.sum(axis=1) / (n - 1), 9)
        chosen = int(np.argmax(mean_to_others))  # argmax returns the first maximum: the tie rule
        agreement = float(off_diagonal.sum() / (n * (n - 1)))
        confidence = float(mean_to_others[chosen])
        agreeing = [
            providers[j] for j in range(n) if j == chosen or matrix[chosen, j] >= self.similarity_threshold
        ]
        return ConsensusOutcome(
            method=self.name,
            chosen_index=chosen,
            chosen_provider=providers[chosen],
            confidence=confidence,
            agreement=agreement,
            providers=providers,
            scores=[round(float(s), 6) for s in mean_to_others],
            similarity=[[round(float(v), 6) for v in row] for row in matrix],
            agreeing_providers=agreeing,
            low_agreement=agreement < self.similarity_threshold or confidence < self.confidence_threshold,
            details=self.details(),
        )

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The medoid answer (see the module doc for the tie rule)."""
        matrix = await self.similarity_matrix([r.content for r in responses]) if len(responses) > 1 else None
        return self.outcome(responses, matrix)


class LexicalConsensus(MedoidConsensus):
    """Medoid under TF-IDF cosine similarity."""

    name = "lexical"

    def similarity(self, texts: list[str]) -> np.ndarray:
        return tfidf_similarity(texts)
