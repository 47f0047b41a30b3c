"""Document analysis: structured results agreed on by several providers, and reports of them."""

from orchestra.applications.documents.agent import ANALYSES, AnalysisResult, DocumentAnalysisAgent
from orchestra.applications.documents.chunking import split_text
from orchestra.applications.documents.models import (
    Compliance,
    ComplianceFinding,
    KeyPoints,
    Sentiment,
    StructuredResult,
    Summary,
)
from orchestra.applications.documents.report import render_report
from orchestra.consensus.structured import (
    parse_structured,
    structured_output,
)

__all__ = [
    "ANALYSES",
    "AnalysisResult",
    "Compliance",
    "ComplianceFinding",
    "DocumentAnalysisAgent",
    "KeyPoints",
    "Sentiment",
    "StructuredResult",
    "Summary",
    "parse_structured",
    "render_report",
    "split_text",
    "structured_output",
]
