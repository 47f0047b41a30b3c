"""`DocumentAnalysisAgent`: summaries, key points, sentiment and compliance findings, each as a
structured answer agreed on by several providers.

agent = DocumentAnalysisAgent(orch)
points = await agent.analyze_document(text, "key_points")
points.result.points, points.confidence, points.metadata[0]["providers_used"]
report = await agent.generate_report([points], "html")

Each analysis is one `process_request` per chunk (task type `document_analysis`, consensus
required, at least `min_providers` providers), asking for JSON in the analysis's pydantic model.
With `consensus.per_task_type.document_analysis: structured` (a built-in strategy), malformed
answers are never chosen and disagreeing ones lower the confidence; with
another strategy the chosen answer is parsed afterwards. A document longer than `max_chars` is
split into chunks (`split_text`) analysed concurrently, then merged: key points and findings are
united (duplicates dropped), sentiment is the length-weighted score (label `mixed` when chunks
disagree in sign), and summaries are combined by one more request. Every request carries tags
`app`, `analysis_type`, `chunk_index`, `chunk_count` and `document_chars`, and the split is logged.
Compliance findings whose passage is not a verbatim quote of the document are dropped (and listed
in `dropped`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from orchestra.applications.documents.chunking import split_text
from orchestra.applications.documents.models import (
    SEVERITY_ORDER,
    Compliance,
    KeyPoints,
    Sentiment,
    StructuredResult,
    Summary,
)
from orchestra.applications.documents.report import render_report
from orchestra.applications.errors import StructuredOutputError, UnknownAnalysisType
from orchestra.consensus.structured import (
    parse_structured,
)
from orchestra.engine.orchestrator import Orchestra
from orchestra.errors import InvalidRequest
from orchestra.logs import get_logger
from orchestra.sync import run_sync

logger = get_logger("orchestra.applications.documents")

ANALYSES: dict[str, type[StructuredResult]] = {
    "summary": Summary,
    "key_points": KeyPoints,
    "sentiment": Sentiment,
    "compliance": Compliance,
}
DEFAULT_RULES = (
    "No personal data (names with contact details, ID numbers, health data) without a stated legal basis.",
    "No unlimited liability, and no penalty without a cap.",
    "No discriminatory or misleading statements.",
    "Payment terms must state an amount and a due date.",
)
INSTRUCTIONS = {
    "summary": "Summarise the document faithfully in a few sentences.",
    "key_points": "List the document's key points, one sentence each, most important first.",
    "sentiment": "Judge the overall sentiment of the document.",
    "compliance": (
        "Check the document against these rules and report every passage that breaks or risks "
        "breaking one, quoting the passage verbatim:\n{rules}"
    ),
}
PROMPT = """{instruction}

Answer with one JSON object (no other text) that follows this JSON schema:
{schema}

Document{part}:
<<<
{text}
>>>"""
MERGE_SUMMARIES = (
    "Combine these summaries of consecutive parts of one document into one summary of the whole."
)


class AnalysisResult(BaseModel):
    """One analysis of one document: the merged result, and the metadata of every request."""

    analysis_type: str
    result: StructuredResult
    chunks: int
    confidence: float | None
    providers: list[str] = Field(default_factory=list)
    dropped: list[dict[str, Any]] = Field(default_factory=list)
    metadata: list[dict[str, Any]] = Field(default_factory=list)


class DocumentAnalysisAgent:
    """Analyses documents with structured, multi-provider answers (see the module doc)."""

    analysis_types = tuple(ANALYSES)

    def __init__(
        self,
        orchestra: Orchestra,
        *,
        task_type: str = "document_analysis",
        max_chars: int = 12_000,
        min_providers: int = 2,
        compliance_rules: Sequence[str] = DEFAULT_RULES,
        user_id: str = "document-agent",
    ) -> None:
        if max_chars < 200:
            raise InvalidRequest(f"max_chars must be at least 200 (got {max_chars})")
        self.orchestra = orchestra
        self.task_type = task_type
        self.max_chars = max_chars
        self.min_providers = min_providers
        self.compliance_rules = list(compliance_rules)
        self.user_id = user_id
        strategy, _ = orchestra.consensus_manager.strategy_for(task_type)
        if strategy != "structured":
            logger.warning(
                "consensus for %r is %r, not 'structured': answers are parsed after a text-level choice",
                task_type,
                strategy,
            )

    async def analyze_document(self, text: str, analysis_type: str) -> AnalysisResult:
        """One of `analysis_types` for `text` (chunked when longer than `max_chars`)."""
        if analysis_type not in ANALYSES:
            raise UnknownAnalysisType(analysis_type, list(ANALYSES))
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("text must be a non-empty string")
        chunks = split_text(text, self.max_chars)
        if len(chunks) > 1:
            logger.info(
                "%s: document of %d characters split into %d chunks of at most %d",
                analysis_type,
                len(text),
                len(chunks),
                self.max_chars,
            )
        tags = {"app": "document_analysis", "analysis_type": analysis_type, "document_chars": str(len(text))}
        answers = await asyncio.gather(
            *(
                self._ask(
                    analysis_type, chunk, tags | {"chunk_index": str(i), "chunk_count": str(len(chunks))}
                )
                for i, chunk in enumerate(chunks)
            )
        )
        results = [result for result, _ in answers]
        metadata = [meta for _, meta in answers]
        merged, dropped = await self._merge(analysis_type, results, chunks, text, tags, metadata)
        confidences = [m.get("confidence") for m in metadata if m.get("confidence") is not None]
        return AnalysisResult(
            analysis_type=analysis_type,
            result=merged,
            chunks=len(chunks),
            confidence=min(confidences) if confidences else None,
            providers=list(dict.fromkeys(p for m in metadata for p in m.get("providers_used", []))),
            dropped=dropped,
            metadata=metadata,
        )

    async def generate_report(
        self,
        data: AnalysisResult | Sequence[AnalysisResult] | Mapping[str, AnalysisResult],
        report_type: str = "markdown",
        *,
        title: str = "Document analysis",
    ) -> str:
        """A Markdown or HTML report of analysis results."""
        return render_report(data, report_type, title=title)

    def analyze_document_sync(self, text: str, analysis_type: str) -> AnalysisResult:
        """`analyze_document` for scripts and notebooks."""
        return run_sync(self.analyze_document(text, analysis_type))

    async def _ask(
        self, analysis_type: str, text: str, tags: dict[str, str], instruction: str | None = None
    ) -> tuple[StructuredResult, dict[str, Any]]:
        schema = ANALYSES[analysis_type]
        chunk_count = int(tags.get("chunk_count", "1"))
        part = f" (part {int(tags['chunk_index']) + 1} of {chunk_count})" if chunk_count > 1 else ""
        rules = "\n".join(f"- {rule}" for rule in self.compliance_rules)
        prompt = PROMPT.format(
            instruction=instruction or INSTRUCTIONS[analysis_type].format(rules=rules),
            schema=json.dumps(schema.model_json_schema()),
            part=part,
            text=text,
        )
        answer = await self.orchestra.process_request(
            prompt,
            task_type=self.task_type,
            user_id=self.user_id,
            require_consensus=True,
            min_providers=self.min_providers,
            tags=tags,
            schema=schema,
        )
        result, error = parse_structured(answer.response, schema)
        if result is None:
            provider = answer.metadata.answered_by or "?"
            raise StructuredOutputError(
                schema.__name__, {provider: error or "?"}, request_id=answer.metadata.request_id
            )
        return result, answer.metadata.as_dict()

    async def _merge(
        self,
        analysis_type: str,
        results: list[StructuredResult],
        chunks: list[str],
        text: str,
        tags: dict[str, str],
        metadata: list[dict[str, Any]],
    ) -> tuple[StructuredResult, list[dict[str, Any]]]:
        dropped: list[dict[str, Any]] = []
        if analysis_type == "compliance":
            findings = [f for r in results if isinstance(r, Compliance) for f in r.findings]
            quoted = [f for f in findings if _normal(f.passage) in _normal(text)]
            dropped = [
                f.model_dump() | {"reason": "passage not found in the document"}
                for f in findings
                if f not in quoted
            ]
            unique = {(f.rule.casefold(), _normal(f.passage)): f for f in quoted}
            ordered = sorted(unique.values(), key=lambda f: SEVERITY_ORDER[f.severity])
            return Compliance(findings=ordered), dropped
        if len(results) == 1:
            return results[0], dropped
        if analysis_type == "key_points":
            points = {_normal(p): p for r in results if isinstance(r, KeyPoints) for p in r.points}
            return KeyPoints(points=list(points.values())), dropped
        if analysis_type == "sentiment":
            return _merge_sentiment([r for r in results if isinstance(r, Sentiment)], chunks), dropped
        partial = "\n\n".join(
            f"Part {i + 1}: {r.summary}" for i, r in enumerate(results) if isinstance(r, Summary)
        )
        merged, meta = await self._ask("summary", partial, tags | {"step": "merge"}, MERGE_SUMMARIES)
        metadata.append(meta)
        return merged, dropped


def _merge_sentiment(results: list[Sentiment], chunks: list[str]) -> Sentiment:
    """Length-weighted mean score; the common label if all chunks agree, `mixed` if they differ in
    sign, else the label of the mean (|score| < 0.2 is neutral)."""
    weights = [len(chunk) for chunk in chunks]
    score = sum(r.score * w for r, w in zip(results, weights, strict=True)) / sum(weights)
    labels = {r.label for r in results}
    if len(labels) == 1:
        label = results[0].label
    elif {"positive", "negative"} <= labels or "mixed" in labels:
        label = "mixed"
    else:
        label = "positive" if score >= 0.2 else "negative" if score <= -0.2 else "neutral"
    return Sentiment(label=label, score=round(score, 6))


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()
