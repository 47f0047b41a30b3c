"""Voting consensus: majority over normalised short answers, or over clusters of long ones.

Short answers (a number, yes/no, a multiple-choice letter, a code block's output) are extracted
and normalised, so "The answer is 42." and "42" vote together. Long answers are clustered by
similarity (two answers join when their similarity reaches `cluster_threshold`, transitively)
and the largest cluster wins; its medoid is returned.

Votes can be weighted by each answer's confidence or by each provider's historical accuracy.
Tie rule (deterministic): the larger total weight wins; on equal weight, the group holding the
answer that came first in the routing order wins.

    voting = VotingConsensus(weight_by="confidence")
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.context import TaskContext
from orchestra.consensus.lexical import MedoidConsensus, tfidf_similarity
from orchestra.errors import ConsensusError
from orchestra.types import ModelResponse

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
_CHOICE = re.compile(
    r"^\(?([a-e])\)?[.):]?(?:\s|$)|\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([a-e])\)?\b", re.I
)
_YES_NO = re.compile(r"^\s*(yes|no|true|false|correct|incorrect)\b", re.IGNORECASE)
_ANSWER_IS = re.compile(r"(?:final answer|the answer is|answer:)\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_CODE = re.compile(r"```(?:\w+)?\n?(.*?)```", re.DOTALL)
_AFFIRMATIVE = {"yes": "yes", "true": "yes", "correct": "yes", "no": "no", "false": "no", "incorrect": "no"}


def normalise_short_answer(text: str, max_words: int = 12) -> str | None:
    """A canonical key for a short answer, or None when the answer is long, free text.

    >>> normalise_short_answer("The answer is 42."), normalise_short_answer("42")
    ('number:42', 'number:42')
    >>> normalise_short_answer("Yes, it is."), normalise_short_answer("(B) because it fits")
    ('bool:yes', 'choice:b')
    """
    stated = _ANSWER_IS.search(text)
    candidate = (stated.group(1) if stated else text).strip()
    code = _CODE.search(candidate)
    if code and len(candidate.split()) <= max_words * 4:
        return "code:" + " ".join(code.group(1).split())
    if len(candidate.split()) > max_words:
        return None
    lowered = candidate.lower().strip().rstrip(".!")
    if match := _YES_NO.match(lowered):
        return "bool:" + _AFFIRMATIVE[match.group(1).lower()]
    if match := _CHOICE.search(lowered):
        return "choice:" + (match.group(1) or match.group(2)).lower()
    numbers = _NUMBER.findall(lowered)
    if len(numbers) == 1:
        value = float(numbers[0].replace(",", ""))
        return "number:" + (str(int(value)) if value.is_integer() else repr(value))
    return "text:" + " ".join(re.sub(r"[^\w\s]", " ", lowered).split())


def similarity_clusters(matrix: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected components of the graph linking answers at least `threshold` similar."""
    n = len(matrix)
    labels = list(range(n))

    def root(i: int) -> int:
        while labels[i] != i:
            labels[i] = labels[labels[i]]
            i = labels[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if matrix[i, j] >= threshold:
                labels[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda members: members[0])


class VotingConsensus(ConsensusStrategy):
    name = "voting"

    def __init__(
        self,
        *,
        weight_by: Literal["none", "confidence", "accuracy"] = "none",
        provider_accuracy: dict[str, float] | None = None,
        cluster_threshold: float = 0.6,
        short_answer_words: int = 12,
        similarity: MedoidConsensus | None = None,
        require_majority: bool = False,
        confidence_threshold: float = 0.5,
    ) -> None:
        self.weight_by = weight_by
        self.provider_accuracy = dict(provider_accuracy or {})
        self.cluster_threshold = cluster_threshold
        self.short_answer_words = short_answer_words
        self.similarity = similarity
        self.require_majority = require_majority
        self.confidence_threshold = confidence_threshold

    def weight(self, response: ModelResponse) -> float:
        if self.weight_by == "confidence" and response.confidence_score is not None:
            return float(response.confidence_score)
        if self.weight_by == "accuracy":
            return float(self.provider_accuracy.get(response.provider, 0.5))
        return 1.0

    async def groups(self, responses: list[ModelResponse]) -> tuple[list[list[int]], str, np.ndarray | None]:
        keys = [normalise_short_answer(r.content, self.short_answer_words) for r in responses]
        short = [key for key in keys if key is not None]
        if len(short) == len(keys):
            grouped: dict[str, list[int]] = {}
            for index, key in enumerate(short):
                grouped.setdefault(key, []).append(index)
            return list(grouped.values()), "short-answer", None
        texts = [r.content for r in responses]
        matrix = (
            await self.similarity.similarity_matrix(texts) if self.similarity else tfidf_similarity(texts)
        )
        return similarity_clusters(matrix, self.cluster_threshold), "clusters", matrix

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The heaviest group's medoid (see the module doc for the tie rule)."""
        if not responses:
            raise ConsensusError("voting needs at least one response")
        groups, mode, matrix = await self.groups(responses)
        weights = [self.weight(r) for r in responses]
        total = sum(weights) or 1.0
        # Larger weight first; on equal weight, the group holding the earliest answer (tie rule).
        winner = max(groups, key=lambda g: (round(sum(weights[i] for i in g), 9), -g[0]))
        share = sum(weights[i] for i in winner) / total
        chosen = _medoid(winner, matrix)
        providers = [r.provider for r in responses]
        outcome = ConsensusOutcome(
            method=self.name,
            chosen_index=chosen,
            chosen_provider=providers[chosen],
            confidence=share,
            agreement=share,
            providers=providers,
            scores=[round(sum(weights[i] for i in g) / total, 6) for g in groups],
            similarity=[] if matrix is None else [[round(float(v), 6) for v in row] for row in matrix],
            agreeing_providers=[providers[i] for i in winner],
            low_agreement=(self.require_majority and share <= 0.5) or share < self.confidence_threshold,
            details={
                "mode": mode,
                "groups": [[providers[i] for i in g] for g in groups],
                "weight_by": self.weight_by,
            },
        )
        return outcome


def _medoid(members: list[int], matrix: np.ndarray | None) -> int:
    if matrix is None or len(members) < 3:
        return members[0]
    sub = matrix[np.ix_(members, members)]
    scores = np.round(sub.sum(axis=1), 9)
    return members[int(np.argmax(scores))]
