"""Errors of the applications, in orchestra's one exception tree."""

from __future__ import annotations

from collections.abc import Sequence

from orchestra.errors import ConsensusError, InvalidRequest


class UnknownAnalysisType(InvalidRequest):
    """`analyze_document` was asked for an analysis it does not offer; `allowed` lists those it does."""

    def __init__(self, analysis_type: object, allowed: Sequence[str]) -> None:
        super().__init__(f"unknown analysis_type {analysis_type!r}; allowed: {', '.join(allowed)}")
        self.analysis_type = analysis_type
        self.allowed = list(allowed)


class StructuredOutputError(ConsensusError):
    """No provider's answer could be read as the structured result asked for; `errors` says why,
    per provider."""

    def __init__(self, what: str, errors: dict[str, str], *, request_id: str | None = None) -> None:
        detail = "; ".join(f"{provider}: {error}" for provider, error in errors.items())
        super().__init__(f"no valid {what} in any answer ({detail})", request_id=request_id)
        self.errors = dict(errors)
