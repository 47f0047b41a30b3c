"""The request table: one flat row per request, with a fixed Arrow schema.

    rows_table([to_row(record, run_id)])   # what each parquet part of a run's request table holds

Nested parts of a record (routing, calls, consensus) are kept as JSON columns. `ROW_VERSION`
says which shape those JSON columns have: in version 2 each call of `calls_json` has its typed
fields (attempts, retried_errors, cache_hit, rate_limit_wait_ms, status, cached/cache-write/
reasoning tokens) at the top level; in version 1 they sat in an `extra` dict. Readers accept both
(`orchestra.tracking.codec.call_from_dict`). Version 3 adds the columns a request's trace needs
beyond those (`start_ns`, `end_ns`, `system_prompt`, the route's and the consensus' times), so
that `record_from_row` gives back the very record a trace is built from (`orchestra traces
RUN_ID` writes deferred traces from the table); version 3 only adds columns at the end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from orchestra.engine.records import CallRecord, RequestRecord, trace_id_for
from orchestra.tracking.codec import call_from_dict, record_dict

if TYPE_CHECKING:
    import pyarrow as pa

ROW_VERSION = 3


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
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("system_prompt", pa.string()),
        ("route_start_ns", pa.int64()),
        ("route_end_ns", pa.int64()),
        ("consensus_start_ns", pa.int64()),
        ("consensus_end_ns", pa.int64()),
    ]
    return pa.schema(columns)


def to_row(record: RequestRecord, run_id: str | None) -> dict[str, Any]:
    """A flat table row; nested parts (routing, calls, consensus) are kept as JSON columns."""
    return _row(record_dict(record), run_id)


_RECORD_KEYS = (*(f.name for f in fields(RequestRecord) if f.name != "calls"), "calls")
_CALL_KEYS = (
    *(f.name for f in fields(CallRecord) if f.name not in ("error", "retried_errors")),
    "retried_errors",
)


def row_from_data(data: Mapping[str, Any], run_id: str | None) -> dict[str, Any] | None:
    """`to_row` of the record whose journal data (`codec.record_dict`, decoded) this is, built
    from the data itself; None for data of an earlier version (decode it into a record then)."""
    if tuple(data) != _RECORD_KEYS:
        return None
    calls = data["calls"]
    if any(tuple(call) != _CALL_KEYS for call in calls):
        return None
    return _row(data, run_id)


def _row(data: Mapping[str, Any], run_id: str | None) -> dict[str, Any]:
    """The row of a record's plain data (`codec.record_dict`, or the journal's JSON of it)."""
    calls = data["calls"]
    routing = data["routing"] or {}
    consensus = data["consensus"] or {}
    response = data["response"]
    answered_by = data["answered_by"]
    return {
        "request_id": data["request_id"],
        "trace_id": trace_id_for(data["request_id"]),
        "run_key": data["run_key"],
        "run_id": run_id,
        "timestamp": datetime.fromtimestamp(data["start_ns"] / 1e9, tz=UTC),
        "user_id": data["user_id"],
        "session_id": data["session_id"],
        "task_type": data["task_type"],
        "prompt": data["prompt"],
        "response": response,
        "status": data["status"],
        "error_type": data["error_type"],
        "error_message": data["error_message"],
        "complexity": routing.get("complexity"),
        "complexity_score": routing.get("complexity_score"),
        "routing_strategy": routing.get("strategy"),
        "routing_reason": routing.get("reason"),
        "candidates": list(routing.get("candidate_scores", {})),
        "chosen": list(routing.get("chosen", [])),
        "propensities_json": json.dumps(routing.get("propensities", {})),
        "providers_called": [c["provider"] for c in calls],
        "providers_used": list(data["providers_used"]),
        "providers_failed": [c["provider"] for c in calls if not c["ok"]],
        "answered_by": answered_by,
        "answered_model": next((c["model"] for c in calls if c["ok"] and c["provider"] == answered_by), None),
        "n_calls": len(calls),
        "consensus_applied": bool(consensus),
        "consensus_method": consensus.get("method"),
        "agreement": consensus.get("agreement"),
        "low_agreement": consensus.get("low_agreement"),
        "confidence": data["confidence"],
        "processing_time_ms": data["processing_time_ms"],
        "latency_ms": data["latency_ms"],
        "input_tokens": data["input_tokens"],
        "output_tokens": data["output_tokens"],
        "cost_usd": data["cost_usd"],
        "quality": data["quality"],
        "response_chars": len(response) if response is not None else None,
        "tags_json": json.dumps(data["tags"]),
        "routing_json": json.dumps(routing) if routing else None,
        "calls_json": json.dumps(calls),
        "consensus_json": json.dumps(consensus) if consensus else None,
        "row_version": ROW_VERSION,
        "start_ns": data["start_ns"],
        "end_ns": data["end_ns"],
        "system_prompt": data["system_prompt"],
        "route_start_ns": data["route_start_ns"],
        "route_end_ns": data["route_end_ns"],
        "consensus_start_ns": data["consensus_start_ns"],
        "consensus_end_ns": data["consensus_end_ns"],
    }


def record_from_row(row: Mapping[str, Any]) -> RequestRecord:
    """The record a row was made from, as far as its trace goes: a row of version 3 gives back
    the same spans and feedback as the record itself. Rows of versions 1-2 lack the end time
    (taken as start + processing time), the system prompt (left out) and the route's and the
    consensus' times (taken as the request's start and end)."""
    start_ns = row.get("start_ns")
    if start_ns is None:
        start_ns = _epoch_ns(row["timestamp"])
    end_ns = row.get("end_ns")
    if end_ns is None:
        end_ns = start_ns + int((row.get("processing_time_ms") or 0.0) * 1e6)
    routing = json.loads(row["routing_json"]) if row.get("routing_json") else None
    consensus = json.loads(row["consensus_json"]) if row.get("consensus_json") else None
    return RequestRecord(
        request_id=row["request_id"],
        run_key=row["run_key"],
        start_ns=start_ns,
        end_ns=end_ns,
        user_id=row["user_id"],
        session_id=row.get("session_id"),
        task_type=row["task_type"],
        prompt=row["prompt"],
        status=row["status"],
        response=row.get("response"),
        system_prompt=row.get("system_prompt"),
        error_type=row.get("error_type"),
        error_message=row.get("error_message"),
        routing=routing,
        route_start_ns=_or(row.get("route_start_ns"), start_ns),
        route_end_ns=_or(row.get("route_end_ns"), start_ns),
        calls=[call_from_dict(call) for call in json.loads(row.get("calls_json") or "[]")],
        consensus=consensus,
        consensus_start_ns=_or(row.get("consensus_start_ns"), end_ns),
        consensus_end_ns=_or(row.get("consensus_end_ns"), end_ns),
        answered_by=row.get("answered_by"),
        providers_used=list(row.get("providers_used") or []),
        processing_time_ms=row.get("processing_time_ms") or 0.0,
        latency_ms=row.get("latency_ms") or 0.0,
        input_tokens=row.get("input_tokens") or 0,
        output_tokens=row.get("output_tokens") or 0,
        cost_usd=row.get("cost_usd") or 0.0,
        quality=row.get("quality"),
        confidence=row.get("confidence"),
        tags=json.loads(row.get("tags_json") or "{}"),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _epoch_ns(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the fixed request-table schema."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=row_schema())
