"""What is recorded for each request: one `RequestRecord` with a `CallRecord` per provider call.

Records are cheap to build on the request's hot path (plain slotted dataclasses); turning them
into table rows and trace spans happens later, on the writer thread.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from orchestra.tracking.request_ids import take_request_id

ROW_VERSION = 1


@dataclass(slots=True)
class CallRecord:
    """One attempt to get an answer from one provider."""

    provider: str
    model: str | None
    start_ns: int
    end_ns: int
    ok: bool
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    error_type: str | None = None
    error_message: str | None = None
    quality: float | None = None
    confidence: float | None = None
    content: str | None = None
    wave: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestRecord:
    """Everything about one `process_request` call, failed ones included."""

    request_id: str
    run_key: str
    start_ns: int
    end_ns: int
    user_id: str
    session_id: str | None
    task_type: str
    prompt: str
    status: str = "ok"
    response: str | None = None
    system_prompt: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    routing: dict[str, Any] | None = None
    route_start_ns: int = 0
    route_end_ns: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    consensus: dict[str, Any] | None = None
    consensus_start_ns: int = 0
    consensus_end_ns: int = 0
    answered_by: str | None = None
    providers_used: list[str] = field(default_factory=list)
    processing_time_ms: float = 0.0
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    quality: float | None = None
    confidence: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A sweep's request carries the id it predicted for it (see request_ids.py).
        if (predicted := take_request_id()) is not None:
            self.request_id = predicted

    @property
    def answered_model(self) -> str | None:
        """The model behind the answer returned (None when no call answered)."""
        return next((c.model for c in self.calls if c.ok and c.provider == self.answered_by), None)

    @property
    def trace_id(self) -> str:
        return trace_id_for(self.request_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        calls = [CallRecord(**call) for call in data.get("calls", [])]
        return cls(**{**data, "calls": calls})


def trace_id_for(request_id: str) -> str:
    """The MLflow trace id of a request (request ids are 32 hex digits, like OTel trace ids)."""
    return f"tr-{request_id}"


ROW_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("trace_id", pa.string()),
        ("run_key", pa.string()),
        ("run_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("task_type", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("complexity", pa.string()),
        ("complexity_score", pa.float64()),
        ("routing_strategy", pa.string()),
        ("routing_reason", pa.string()),
        ("candidates", pa.list_(pa.string())),
        ("chosen", pa.list_(pa.string())),
        ("propensities_json", pa.string()),
        ("providers_called", pa.list_(pa.string())),
        ("providers_used", pa.list_(pa.string())),
        ("providers_failed", pa.list_(pa.string())),
        ("answered_by", pa.string()),
        ("answered_model", pa.string()),
        ("n_calls", pa.int32()),
        ("consensus_applied", pa.bool_()),
        ("consensus_method", pa.string()),
        ("agreement", pa.float64()),
        ("low_agreement", pa.bool_()),
        ("confidence", pa.float64()),
        ("processing_time_ms", pa.float64()),
        ("latency_ms", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("quality", pa.float64()),
        ("response_chars", pa.int64()),
        ("tags_json", pa.string()),
        ("routing_json", pa.string()),
        ("calls_json", pa.string()),
        ("consensus_json", pa.string()),
        ("row_version", pa.int32()),
    ]
)


def to_row(record: RequestRecord, run_id: str | None) -> dict[str, Any]:
    """A flat table row; nested parts (routing, calls, consensus) are kept as JSON columns."""
    routing = record.routing or {}
    consensus = record.consensus or {}
    calls = [asdict(call) for call in record.calls]
    return {
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "run_key": record.run_key,
        "run_id": run_id,
        "timestamp": datetime.fromtimestamp(record.start_ns / 1e9, tz=UTC),
        "user_id": record.user_id,
        "session_id": record.session_id,
        "task_type": record.task_type,
        "prompt": record.prompt,
        "response": record.response,
        "status": record.status,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "complexity": routing.get("complexity"),
        "complexity_score": routing.get("complexity_score"),
        "routing_strategy": routing.get("strategy"),
        "routing_reason": routing.get("reason"),
        "candidates": list(routing.get("candidate_scores", {})),
        "chosen": list(routing.get("chosen", [])),
        "propensities_json": json.dumps(routing.get("propensities", {})),
        "providers_called": [c.provider for c in record.calls],
        "providers_used": list(record.providers_used),
        "providers_failed": [c.provider for c in record.calls if not c.ok],
        "answered_by": record.answered_by,
        "answered_model": record.answered_model,
        "n_calls": len(record.calls),
        "consensus_applied": bool(consensus),
        "consensus_method": consensus.get("method"),
        "agreement": consensus.get("agreement"),
        "low_agreement": consensus.get("low_agreement"),
        "confidence": record.confidence,
        "processing_time_ms": record.processing_time_ms,
        "latency_ms": record.latency_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": record.cost_usd,
        "quality": record.quality,
        "response_chars": len(record.response) if record.response is not None else None,
        "tags_json": json.dumps(record.tags),
        "routing_json": json.dumps(routing) if routing else None,
        "calls_json": json.dumps(calls),
        "consensus_json": json.dumps(consensus) if consensus else None,
        "row_version": ROW_VERSION,
    }


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the fixed request-table schema."""
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
