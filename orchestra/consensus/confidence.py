"""Confidence consensus: the answer with the highest confidence.

Confidence comes from the first source, in `order`, that every answer has (default order):
1. `model`: a fitted `AnswerQualityModel` (`orchestra.consensus.calibration`): the calibrated
   probability that each answer is good, from its agreement with the others, its provider's
   record, its length and logprobs (needs `model`);
2. `logprobs`: the provider's own, from logprobs (`ModelResponse.confidence_score`);
3. `agreement`: agreement with the other answers (mean similarity to them; needs two answers);
4. `historical_quality`: the provider's past quality (`provider_quality`, e.g. mean judge score).
Ties go to the answer that came first in the routing order.

What it uses, against `similarity`: with a model, `confidence` weighs agreement against the
provider's record, length and logprobs, and its confidence is a calibrated probability. Without
a model and without logprobs it falls to `agreement`, the mean similarity to the other answers,
which is exactly what the `similarity` medoid maximises: the two then pick the same answer, and
the confidence is uncalibrated (`details["confidence_calibrated"]` is False).

    strategy = ConfidenceConsensus(model="models/answer_quality.json")
    strategy = ConfidenceConsensus(provider_quality={"gpt-4": 0.19, "gemini-pro": 0.20})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.calibration import AnswerQualityModel
from orchestra.consensus.context import TaskContext
from orchestra.consensus.lexical import MedoidConsensus, tfidf_similarity
from orchestra.errors import ConsensusError
from orchestra.types import ModelResponse

SOURCES = ("model", "logprobs", "agreement", "historical_quality")


class ConfidenceConsensus(ConsensusStrategy):
    name = "confidence"

    def __init__(
        self,
        *,
        provider_quality: dict[str, float] | None = None,
        similarity: MedoidConsensus | None = None,
        confidence_threshold: float = 0.7,
        order: tuple[str, ...] = SOURCES,
        model: AnswerQualityModel | str | Path | None = None,
    ) -> None:
        unknown = set(order) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown confidence sources {sorted(unknown)}; available: {', '.join(SOURCES)}")
        self.order = tuple(order)
        self.provider_quality = dict(provider_quality or {})
        self.similarity = similarity
        self.confidence_threshold = confidence_threshold
        self.model = AnswerQualityModel.load(model) if isinstance(model, str | Path) else model

    async def scores(self, responses: list[ModelResponse]) -> tuple[list[float], str, np.ndarray | None]:
        for source in self.order:
            if source == "model" and self.model is not None:
                answers = [(r.provider, r.content, r.confidence_score) for r in responses]
                return [float(p) for p in self.model.probabilities(answers)], source, None
            given = [r.confidence_score for r in responses if r.confidence_score is not None]
            if source == "logprobs" and len(given) == len(responses):
                return [float(score) for score in given], source, None
            if source == "agreement" and len(responses) > 1:
                texts = [r.content for r in responses]
                similarity = self.similarity
                matrix = await similarity.similarity_matrix(texts) if similarity else tfidf_similarity(texts)
                off_diagonal = matrix - np.diag(np.diag(matrix))
                return [float(s) for s in off_diagonal.sum(axis=1) / (len(responses) - 1)], source, matrix
            if source == "historical_quality" and all(r.provider in self.provider_quality for r in responses):
                return [self.provider_quality[r.provider] for r in responses], source, None
        return [1.0 for _ in responses], "none", None

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The most confident answer (ties: the earliest in routing order)."""
        if not responses:
            raise ConsensusError("confidence consensus needs at least one response")
        scores, source, matrix = await self.scores(responses)
        rounded = np.round(scores, 9)
        chosen = int(np.argmax(rounded))  # first maximum: the tie rule
        providers = [r.provider for r in responses]
        agreement = (
            float((matrix.sum() - np.trace(matrix)) / (len(responses) * (len(responses) - 1)))
            if matrix is not None
            else float(np.mean(scores))
        )
        outcome = ConsensusOutcome(
            method=self.name,
            chosen_index=chosen,
            chosen_provider=providers[chosen],
            confidence=float(scores[chosen]),
            agreement=agreement,
            providers=providers,
            scores=[round(float(s), 6) for s in scores],
            similarity=[] if matrix is None else [[round(float(v), 6) for v in row] for row in matrix],
            agreeing_providers=[providers[chosen]],
            low_agreement=float(scores[chosen]) < self.confidence_threshold,
            details={"confidence_source": source, "confidence_calibrated": source == "model"},
        )
        return outcome
