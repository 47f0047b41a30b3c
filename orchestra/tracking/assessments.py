"""A request's quality as MLflow assessments (feedback) on its trace, so MLflow's trace view and
evaluation pages can show, filter and compare requests by quality.

    request_feedback(record)  # [Feedback("quality", 1.0, on the trace), Feedback("quality", 0.0,
                              #  on the call span of a provider whose answer lost), ...]

What becomes feedback (absent values are left out):

- `quality`: the recorded judge label of the answer returned (replay providers carry it), on the
  trace; with more than one labelled call, each call's label on its own span too;
- `consensus_agreement` and `confidence`: what the consensus strategy measured, on the trace.

Each assessment's id derives from its trace, name and span, like span ids (spans.py): writing a
record again (a retried batch, a restarted writer, an adopted journal) finds it already there and
adds nothing.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from orchestra.engine.records import RequestRecord
from orchestra.tracking.spans import call_span_id

if TYPE_CHECKING:
    from mlflow.entities import Feedback

QUALITY = "quality"
AGREEMENT = "consensus_agreement"
CONFIDENCE = "confidence"
JUDGE_SOURCE_ID = "recorded-judge-label"
"""The source of `quality`: the label recorded with the answer (AlpacaEval's GPT-4 judge)."""


def request_feedback(record: RequestRecord) -> list[Feedback]:
    """The feedback to log on the trace of `record` (empty when it has no quality signal)."""
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    judge = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id=JUDGE_SOURCE_ID)
    created_ms = record.end_ns // 1_000_000
    trace_id = record.trace_id
    found: list[Feedback] = []
    if record.quality is not None:
        found.append(
            _feedback(trace_id, QUALITY, record.quality, judge, created_ms, answered_by=record.answered_by)
        )
    labelled = [(index, call) for index, call in enumerate(record.calls) if call.quality is not None]
    if len(labelled) > 1:
        for index, call in labelled:
            assert call.quality is not None
            span = call_span_id(record.request_id, index)
            found.append(
                _feedback(trace_id, QUALITY, call.quality, judge, created_ms, span, provider=call.provider)
            )
    consensus = record.consensus or {}
    method = str(consensus.get("method") or "none")
    code = AssessmentSource(source_type=AssessmentSourceType.CODE, source_id=f"orchestra.consensus.{method}")
    if consensus.get("agreement") is not None:
        found.append(_feedback(trace_id, AGREEMENT, float(consensus["agreement"]), code, created_ms))
    if record.confidence is not None:
        found.append(_feedback(trace_id, CONFIDENCE, float(record.confidence), code, created_ms))
    return found


def assessment_id(trace_id: str, name: str, span_id: str | None = None) -> str:
    """The id of assessment `name` of a trace (or of one of its spans): the same every time."""
    digest = hashlib.blake2b(f"{trace_id}/{span_id or ''}/{name}".encode(), digest_size=16).hexdigest()
    return f"a-{digest}"


def _feedback(
    trace_id: str,
    name: str,
    value: float,
    source: object,
    created_ms: int,
    span_id: str | None = None,
    **metadata: str | None,
) -> Feedback:
    from mlflow.entities import Feedback

    feedback = Feedback(
        name=name,
        value=float(value),
        source=source,  # type: ignore[arg-type]
        trace_id=trace_id,
        span_id=span_id,
        metadata={k: v for k, v in metadata.items() if v is not None} or None,
        create_time_ms=created_ms,
        last_update_time_ms=created_ms,
    )
    feedback.assessment_id = assessment_id(trace_id, name, span_id)
    return feedback
