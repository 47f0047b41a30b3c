"""Errors of the applications, in orchestra's one exception tree."""

from __future__ import annotations

from collections.abc import Sequence

from orchestra.consensus.structured import StructuredOutputError
from orchestra.errors import InvalidRequest


class UnknownAnalysisType(InvalidRequest):
    """`analyze_document` was asked for an analysis it does not offer; `allowed` lists those it does."""

    def __init__(self, analysis_type: object, allowed: Sequence[str]) -> None:
        super().__init__(f"unknown analysis_type {analysis_type!r}; allowed: {', '.join(allowed)}")
        self.analysis_type = analysis_type
        self.allowed = list(allowed)


__all__ = ["StructuredOutputError", "UnknownAnalysisType"]
