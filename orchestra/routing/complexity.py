"""Complexity evaluation: how hard is a prompt? A score in [0, 1] and a `TaskComplexity`.

evaluator = HeuristicComplexityEvaluator()
await evaluator.evaluate("Summarize this paragraph.")  # TaskComplexity.SIMPLE
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from orchestra.types import TaskComplexity


@dataclass(frozen=True, slots=True)
class ComplexityAssessment:
    complexity: TaskComplexity
    score: float
    evaluator: str


CLASS_SCORE = {TaskComplexity.SIMPLE: 0.0, TaskComplexity.MEDIUM: 0.5, TaskComplexity.COMPLEX: 1.0}
"""The score a class stands for when an evaluator gives only the class."""


class ComplexityEvaluator(ABC):
    """Base class: implement `evaluate` (the score is the class's `CLASS_SCORE`). An evaluator
    that scores first subclasses `ScoredComplexityEvaluator`; one that decides both at once
    overrides `assess`. The router calls `assess`, once per request."""

    name = "custom"

    @abstractmethod
    async def evaluate(self, prompt: str) -> TaskComplexity:
        """The prompt's complexity class."""

    async def score(self, prompt: str) -> float:
        """A score in [0, 1]."""
        return (await self.assess(prompt)).score

    async def assess(self, prompt: str) -> ComplexityAssessment:
        complexity = await self.evaluate(prompt)
        return ComplexityAssessment(complexity, CLASS_SCORE[complexity], self.name)


class ScoredComplexityEvaluator(ComplexityEvaluator):
    """An evaluator with a score in [0, 1]; the class follows from thresholds:
    SIMPLE below `simple_below`, COMPLEX from `complex_from` up, MEDIUM between."""

    def __init__(self, *, simple_below: float = 0.35, complex_from: float = 0.6) -> None:
        if not 0.0 <= simple_below <= complex_from <= 1.0:
            raise ValueError("need 0 <= simple_below <= complex_from <= 1")
        self.simple_below = simple_below
        self.complex_from = complex_from

    @abstractmethod
    async def score(self, prompt: str) -> float:
        """The prompt's score in [0, 1]."""

    def classify(self, score: float) -> TaskComplexity:
        if score < self.simple_below:
            return TaskComplexity.SIMPLE
        if score >= self.complex_from:
            return TaskComplexity.COMPLEX
        return TaskComplexity.MEDIUM

    async def evaluate(self, prompt: str) -> TaskComplexity:
        return self.classify(await self.score(prompt))

    async def assess(self, prompt: str) -> ComplexityAssessment:
        score = await self.score(prompt)
        return ComplexityAssessment(self.classify(score), score, self.name)


_SIMPLE_PATTERNS = [
    r"\b(summary|summari[sz]e|list|extract|name|define|translate|rewrite|correct)\b",
    r"\b(simple|basic|quick|short|brief|one word|one sentence)\b",
    r"^(what|who|when|where) (is|are|was|were)\b",
]
_CODE_LINE_END = re.compile(r"[{};]\s*$", re.MULTILINE)
_COMPLEX_PATTERNS = [
    r"\b(analy[sz]e|analysis|strategy|optimi[sz]e|design|architect|prove|derive)\b",
    r"\b(complex|detailed|comprehensive|in[- ]depth|step[- ]by[- ]step|trade-?offs?)\b",
    r"\b(implement|algorithm|debug|refactor|compare|evaluate|critique|explain why)\b",
]


class HeuristicComplexityEvaluator(ScoredComplexityEvaluator):
    """Length, structure and keyword patterns (the seed's `BusinessTaskEvaluator` idea).

    score = 0.45 x length + 0.2 x structure + 0.35 x keywords, each part in [0, 1];
    SIMPLE below `simple_below`, COMPLEX from `complex_from` up, MEDIUM between.
    """

    name = "heuristic"

    def __init__(self, *, simple_below: float = 0.35, complex_from: float = 0.6) -> None:
        super().__init__(simple_below=simple_below, complex_from=complex_from)
        self._simple = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in _SIMPLE_PATTERNS]
        self._complex = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in _COMPLEX_PATTERNS]

    async def score(self, prompt: str) -> float:
        return self.score_sync(prompt)

    def score_sync(self, prompt: str) -> float:
        words = len(prompt.split())
        length = min(1.0, math.log1p(words) / math.log1p(300))
        lines = prompt.count("\n")
        code = prompt.count("```") // 2 + len(_CODE_LINE_END.findall(prompt))
        questions = prompt.count("?")
        structure = min(1.0, 0.1 * lines + 0.3 * code + 0.15 * max(questions - 1, 0))
        simple_hits = sum(bool(p.search(prompt)) for p in self._simple)
        complex_hits = sum(bool(p.search(prompt)) for p in self._complex)
        keywords = min(1.0, max(0.0, 0.5 + 0.25 * complex_hits - 0.25 * simple_hits))
        return round(0.45 * length + 0.2 * structure + 0.35 * keywords, 4)
