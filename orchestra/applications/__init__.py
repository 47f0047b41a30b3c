"""Applications built on `Orchestra.process_request`: code generation checked in a sandbox, and
document analysis with structured, multi-provider answers."""

from orchestra.applications.code_generation import CodeGenerationApp, CodeResult, ReviewResult
from orchestra.applications.documents import AnalysisResult, DocumentAnalysisAgent, render_report
from orchestra.applications.errors import StructuredOutputError, UnknownAnalysisType

__all__ = [
    "AnalysisResult",
    "CodeGenerationApp",
    "CodeResult",
    "DocumentAnalysisAgent",
    "ReviewResult",
    "StructuredOutputError",
    "UnknownAnalysisType",
    "render_report",
]
