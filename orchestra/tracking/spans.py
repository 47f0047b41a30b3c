"""A request record as an MLflow trace: a root span with route, one span per call, consensus.

Span and trace ids derive from the request id, so writing the same record twice (a replay from
the spool) updates the trace instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from mlflow.entities import Span, SpanType
from mlflow.tracing.constant import SpanAttributeKey
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from orchestra.engine.records import CallRecord, RequestRecord

_EMPTY_RESOURCE = Resource.get_empty()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_TAG = SpanAttributeKey.TRACE_TAG_PREFIX


def request_spans(record: RequestRecord) -> list[Span]:
    """The spans of one request's trace."""
    trace_int = int(record.request_id, 16)
    trace_id = record.trace_id
    root_id = _span_id(record.request_id, "root")
    ok = record.status == "ok"
    spans = [
        _span(
            trace_int,
            trace_id,
            root_id,
            None,
            name=f"orchestra.{record.task_type}",
            span_type=SpanType.CHAIN,
            start_ns=record.start_ns,
            end_ns=record.end_ns,
            inputs={
                "prompt": record.prompt,
                "system_prompt": record.system_prompt,
                "task_type": record.task_type,
            },
            outputs={"response": record.response} if ok else None,
            attributes={
                "user.id": record.user_id,
                **({"session.id": record.session_id} if record.session_id else {}),
                "orchestra.request_id": record.request_id,
                "orchestra.run_key": record.run_key,
                "orchestra.status": record.status,
                "orchestra.answered_by": record.answered_by,
                "orchestra.cost_usd": record.cost_usd,
                "orchestra.latency_ms": record.latency_ms,
                "orchestra.processing_time_ms": record.processing_time_ms,
                "orchestra.quality": record.quality,
                **{f"{_TAG}{key}": value for key, value in record.tags.items()},
            },
            error=None if ok else f"{record.error_type}: {record.error_message}",
        )
    ]
    if record.routing is not None:
        spans.append(
            _span(
                trace_int,
                trace_id,
                _span_id(record.request_id, "route"),
                root_id,
                name="route",
                span_type=SpanType.CHAIN,
                start_ns=record.route_start_ns,
                end_ns=record.route_end_ns,
                inputs={"task_type": record.task_type},
                outputs=record.routing,
                attributes={"orchestra.strategy": record.routing.get("strategy")},
            )
        )
    for index, call in enumerate(record.calls):
        spans.append(_call_span(trace_int, trace_id, root_id, record, call, index))
    if record.consensus is not None:
        spans.append(
            _span(
                trace_int,
                trace_id,
                _span_id(record.request_id, "consensus"),
                root_id,
                name="consensus",
                span_type=SpanType.CHAIN,
                start_ns=record.consensus_start_ns,
                end_ns=record.consensus_end_ns,
                inputs={"providers": record.consensus.get("providers")},
                outputs=record.consensus,
                attributes={"orchestra.method": record.consensus.get("method")},
            )
        )
    return spans


def _call_span(
    trace_int: int, trace_id: str, root_id: int, record: RequestRecord, call: CallRecord, index: int
) -> Span:
    messages = [{"role": "user", "content": record.prompt}]
    if record.system_prompt:
        messages.insert(0, {"role": "system", "content": record.system_prompt})
    attributes: dict[str, Any] = {
        SpanAttributeKey.MODEL: call.model,
        SpanAttributeKey.MODEL_PROVIDER: call.provider,
        "orchestra.latency_ms": call.latency_ms,
        "orchestra.wave": call.wave,
        "orchestra.quality": call.quality,
        "orchestra.confidence": call.confidence,
        **call_attributes(call),
    }
    if call.ok:
        attributes[SpanAttributeKey.CHAT_USAGE] = {
            "input_tokens": call.input_tokens,
            "output_tokens": call.output_tokens,
            "total_tokens": call.input_tokens + call.output_tokens,
        }
        attributes[SpanAttributeKey.LLM_COST] = {"total_cost": call.cost_usd}
    return _span(
        trace_int,
        trace_id,
        _call_span_int(record.request_id, index),
        root_id,
        name=f"call {call.provider}",
        span_type=SpanType.CHAT_MODEL,
        start_ns=call.start_ns,
        end_ns=call.end_ns,
        inputs={"model": call.model, "messages": messages},
        outputs={"content": call.content} if call.ok else None,
        attributes=attributes,
        error=None if call.ok else f"{call.error_type}: {call.error_message}",
    )


def call_attributes(call: CallRecord) -> dict[str, Any]:
    """A call's resilience and usage facts as span attributes (only those that happened)."""
    attributes: dict[str, Any] = {"orchestra.attempts": call.attempts}
    if call.retried_errors:
        attributes["orchestra.retried_errors"] = [asdict(retried) for retried in call.retried_errors]
    if call.cache_hit:
        attributes["orchestra.cache_hit"] = True
    if call.rate_limit_wait_ms:
        attributes["orchestra.rate_limit_wait_ms"] = call.rate_limit_wait_ms
    if call.status is not None:
        attributes["orchestra.status"] = call.status
    for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
        if value := getattr(call, name):
            attributes[f"orchestra.{name}"] = value
    return attributes


def _span(
    trace_int: int,
    trace_id: str,
    span_id: int,
    parent_id: int | None,
    *,
    name: str,
    span_type: str,
    start_ns: int,
    end_ns: int,
    inputs: Any,
    outputs: Any,
    attributes: dict[str, Any],
    error: str | None = None,
) -> Span:
    encoded = {
        SpanAttributeKey.REQUEST_ID: json.dumps(trace_id),
        SpanAttributeKey.SPAN_TYPE: json.dumps(span_type),
        SpanAttributeKey.INPUTS: json.dumps(inputs, default=str),
    }
    if outputs is not None:
        encoded[SpanAttributeKey.OUTPUTS] = json.dumps(outputs, default=str)
    for key, value in attributes.items():
        if value is not None:
            encoded[key] = json.dumps(value, default=str)
    context = SpanContext(trace_int, span_id, False, _SAMPLED)
    parent = SpanContext(trace_int, parent_id, False, _SAMPLED) if parent_id else None
    status = Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK)
    otel_span = ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        start_time=start_ns,
        end_time=max(end_ns, start_ns),
        attributes=encoded,
        status=status,
        resource=_EMPTY_RESOURCE,
    )
    return Span(otel_span)


def call_span_id(request_id: str, index: int) -> str:
    """The MLflow span id (16 hex digits) of a request's call number `index`."""
    return f"{_call_span_int(request_id, index):016x}"


def _call_span_int(request_id: str, index: int) -> int:
    return _span_id(request_id, f"call:{index}")


def _span_id(request_id: str, part: str) -> int:
    digest = hashlib.blake2b(f"{request_id}/{part}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1
