"""Complexity evaluators beyond the heuristic: nearest labelled examples, and asking a model.

knn = EmbeddingComplexityEvaluator.fit(labelled_table)          # columns prompt, complexity
llm = LLMComplexityEvaluator(cheap_connector)                     # falls back to the heuristic
router.register_evaluator("support", knn)
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from orchestra.consensus.embeddings import EmbeddingSpec, load_embedder
from orchestra.errors import ConfigError
from orchestra.frames import as_frame
from orchestra.logs import get_logger
from orchestra.providers.base import BaseModelConnector
from orchestra.routing.complexity import (
    CLASS_SCORE,
    ComplexityAssessment,
    ComplexityEvaluator,
    HeuristicComplexityEvaluator,
    ScoredComplexityEvaluator,
)
from orchestra.types import ModelRequest, TaskComplexity

logger = get_logger("orchestra.routing")


class EmbeddingComplexityEvaluator(ScoredComplexityEvaluator):
    """The k nearest labelled examples (cosine over sentence embeddings) vote on complexity.

    The score is the similarity-weighted mean of the neighbours' classes (simple 0, medium 0.5,
    complex 1); the class follows from the score with the same thresholds as the heuristic.
    """

    name = "embedding"

    def __init__(
        self,
        prompts: list[str],
        labels: list[TaskComplexity | str],
        *,
        k: int = 7,
        spec: EmbeddingSpec | None = None,
        simple_below: float = 0.35,
        complex_from: float = 0.6,
    ) -> None:
        if not prompts or len(prompts) != len(labels):
            raise ConfigError("the embedding evaluator needs labelled examples: one label per prompt")
        super().__init__(simple_below=simple_below, complex_from=complex_from)
        self.labels = [TaskComplexity(label) for label in labels]
        self.values = np.array([CLASS_SCORE[label] for label in self.labels])
        self.k = min(k, len(prompts))
        self.spec = spec or EmbeddingSpec()
        self._prompts = list(prompts)
        self._matrix: np.ndarray | None = None  # embedded on first use

    @classmethod
    def fit(
        cls, table: Any, *, prompt_column: str = "prompt", label_column: str = "complexity", **options: Any
    ) -> EmbeddingComplexityEvaluator:
        """From a labelled table (polars or pandas, or a CSV/parquet path)."""
        import polars as pl

        if isinstance(table, str):
            table = pl.read_parquet(table) if table.endswith(".parquet") else pl.read_csv(table)
        frame = as_frame(table)
        missing = {prompt_column, label_column} - set(frame.columns)
        if missing:
            raise ConfigError(
                f"labelled examples lack column(s) {sorted(missing)}; they have {frame.columns}"
            )
        return cls(frame[prompt_column].to_list(), frame[label_column].to_list(), **options)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return load_embedder(self.spec).embed(texts)

    def score_sync(self, prompt: str) -> float:
        if self._matrix is None:
            self._matrix = self._embed(self._prompts)
        similarity = self._matrix @ self._embed([prompt])[0]
        nearest = np.argsort(-similarity, kind="stable")[: self.k]
        weights = np.clip(similarity[nearest], 1e-6, None)
        return float(np.dot(weights, self.values[nearest]) / weights.sum())

    async def score(self, prompt: str) -> float:
        import asyncio

        return await asyncio.to_thread(self.score_sync, prompt)


GRADING_PROMPT = """Rate how hard the following task is for a capable assistant to answer well.
Reply with JSON only: {{"complexity": "simple" | "medium" | "complex", "score": <0..1>}}.

Task:
{prompt}"""


class LLMComplexityEvaluator(ComplexityEvaluator):
    """Asks a (cheap) model to grade complexity; answers are cached; on any failure or an
    unparseable answer it falls back to the heuristic (and says so in the assessment).

    `connector` may be a callable returning it, so the grader is looked up at first use.
    """

    name = "llm"

    def __init__(
        self,
        connector: BaseModelConnector | Callable[[], BaseModelConnector],
        *,
        fallback: ComplexityEvaluator | None = None,
        cache_size: int = 10_000,
        max_prompt_chars: int = 4_000,
    ) -> None:
        self.connector = connector
        self.fallback = fallback or HeuristicComplexityEvaluator()
        self.cache_size = cache_size
        self.max_prompt_chars = max_prompt_chars
        self._cache: OrderedDict[str, ComplexityAssessment] = OrderedDict()
        self.calls = 0

    async def assess(self, prompt: str) -> ComplexityAssessment:
        cached = self._cache.get(prompt)
        if cached is not None:
            self._cache.move_to_end(prompt)
            return cached
        self.calls += 1
        try:
            request = ModelRequest(
                prompt=GRADING_PROMPT.format(prompt=prompt[: self.max_prompt_chars]),
                temperature=0.0,
                max_tokens=50,
            )
            connector = self.connector if isinstance(self.connector, BaseModelConnector) else self.connector()
            answer = await connector.generate(request)
            assessment = _parse_grade(answer.content)
        except Exception as err:  # the grader is a helper: any failure means the heuristic decides
            logger.info(
                "LLM complexity grading failed (%s: %s); using the heuristic", type(err).__name__, err
            )
            fallback = await self.fallback.assess(prompt)
            return ComplexityAssessment(
                fallback.complexity, fallback.score, f"{self.name}->fallback:{fallback.evaluator}"
            )
        self._cache[prompt] = assessment
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return assessment

    async def evaluate(self, prompt: str) -> TaskComplexity:
        return (await self.assess(prompt)).complexity


def _parse_grade(text: str) -> ComplexityAssessment:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        raise ValueError(f"no JSON in the grader's answer: {text[:80]!r}")
    data = json.loads(match.group(0))
    complexity = TaskComplexity(str(data["complexity"]).lower())
    score = float(data.get("score", CLASS_SCORE[complexity]))
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score {score} is outside [0, 1]")
    return ComplexityAssessment(complexity, score, "llm")
