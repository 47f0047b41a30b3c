"""The request table: one flat row per request, with a fixed Arrow schema.

    rows_table([to_row(record, run_id)])   # what each parquet part of a run's request table holds

Nested parts of a record (routing, calls, consensus) are kept as JSON columns. `ROW_VERSION`
says which shape those JSON columns have: in version 2 each call of `calls_json` has its typed
fields (attempts, retried_errors, cache_hit, rate_limit_wait_ms, status, cached/cache-write/
reasoning tokens) at the top level; in version 1 they sat in an `extra` dict. Readers accept both
(`orchestra.tracking.codec.call_from_dict`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from orchestra.engine.records import RequestRecord
from orchestra.tracking.codec import call_dict

if TYPE_CHECKING:
    import pyarrow as pa

ROW_VERSION = 2


@cache
def row_schema() -> pa.Schema:
    """The Arrow schema of the request table (built on first use: pyarrow is imported by
    what writes or reads a table, not by `import orchestra`)."""
    import pyarrow as pa

    columns: list[tuple[str, pa.DataType]] = [
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
    return pa.schema(columns)


def to_row(record: RequestRecord, run_id: str | None) -> dict[str, Any]:
    """A flat table row; nested parts (routing, calls, consensus) are kept as JSON columns."""
    routing = record.routing or {}
    consensus = record.consensus or {}
    calls = [call_dict(call) for call in record.calls]
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
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=row_schema())
