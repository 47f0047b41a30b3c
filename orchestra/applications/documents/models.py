"""The structured results of document analysis, and how much two of them agree.

Sentiment(label="positive", score=0.6).agreement_with(Sentiment(label="positive", score=0.2))  # 0.8
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StructuredResult(BaseModel):
    """A result a model answers as JSON; structured consensus compares answers on
    `text_for_agreement` (or with `agreement_with`, where defined)."""

    model_config = ConfigDict(extra="ignore")

    def text_for_agreement(self) -> str:
        return self.model_dump_json()


class Summary(StructuredResult):
    summary: str = Field(min_length=1, description="A faithful summary of the document.")

    def text_for_agreement(self) -> str:
        return self.summary


class KeyPoints(StructuredResult):
    points: list[str] = Field(min_length=1, description="The document's key points, one sentence each.")

    def text_for_agreement(self) -> str:
        return "\n".join(self.points)


class Sentiment(StructuredResult):
    label: Literal["positive", "negative", "neutral", "mixed"]
    score: float = Field(ge=-1.0, le=1.0, description="-1 very negative ... 0 neutral ... 1 very positive.")

    def agreement_with(self, other: Sentiment) -> float:
        """0 for different labels; else 1 minus half the score difference."""
        return 0.0 if self.label != other.label else 1.0 - abs(self.score - other.score) / 2.0


Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class ComplianceFinding(StructuredResult):
    rule: str = Field(min_length=1, description="The rule the passage breaks or puts at risk.")
    severity: Severity
    passage: str = Field(min_length=1, description="The exact passage, quoted verbatim from the document.")
    explanation: str = ""


class Compliance(StructuredResult):
    findings: list[ComplianceFinding] = Field(
        default_factory=list, description="One entry per issue found; empty when the document complies."
    )

    def text_for_agreement(self) -> str:
        return "\n".join(f"{f.severity} {f.rule} {f.passage}" for f in self.findings) or "no findings"
