"""The metadata dict `process_request` returns with each answer.

metadata = request_metadata(record, decision, run_id="...", run_key="...")
metadata["providers_used"], metadata["cost_usd"], metadata["mlflow_run_id"]
"""

from __future__ import annotations

from typing import Any

from orchestra.routing.decision import RoutingDecision
from orchestra.tracking.records import RequestRecord


def request_metadata(
    record: RequestRecord, decision: RoutingDecision | None, run_id: str | None, run_key: str
) -> dict[str, Any]:
    """Routing, every call, consensus, usage, cost and where the request was logged."""
    consensus = record.consensus or {}
    failed = [c for c in record.calls if not c.ok]
    return {
        "request_id": record.request_id,
        "task_type": record.task_type,
        "user_id": record.user_id,
        "session_id": record.session_id,
        "complexity": decision.complexity.value if decision else None,
        "complexity_score": decision.complexity_score if decision else None,
        "providers_used": list(record.providers_used),
        "providers_called": [c.provider for c in record.calls],
        "providers_failed": [
            {
                "provider": c.provider,
                "error_type": c.error_type,
                "message": c.error_message,
                "attempts": c.extra.get("attempts", 1),
            }
            for c in failed
        ],
        "calls": [
            {
                "provider": c.provider,
                "ok": c.ok,
                "attempts": c.extra.get("attempts", 1),
                "latency_ms": c.latency_ms,
                "rate_limit_wait_ms": c.extra.get("rate_limit_wait_ms", 0.0),
                "cost_usd": c.cost_usd,
                "error_type": c.error_type,
            }
            for c in record.calls
        ],
        "answered_by": record.answered_by,
        "model": record.answered_model,
        "routing_strategy": decision.strategy if decision else None,
        "routing_reason": decision.reason if decision else None,
        "propensities": dict(decision.propensities) if decision else {},
        "consensus_applied": bool(consensus),
        "consensus_method": consensus.get("method"),
        "confidence": record.confidence,
        "confidence_calibrated": bool((consensus.get("details") or {}).get("confidence_calibrated", False)),
        "agreement": consensus.get("agreement"),
        "low_agreement": consensus.get("low_agreement", False),
        "processing_time_ms": record.processing_time_ms,
        "latency_ms": record.latency_ms,
        "tokens": {
            "input": record.input_tokens,
            "output": record.output_tokens,
            "total": record.input_tokens + record.output_tokens,
        },
        "cost_usd": record.cost_usd,
        "cache_hit": any(c.ok and c.extra.get("cache_hit") for c in record.calls),
        "quality": record.quality,
        "errors": [f"{c.provider}: {c.error_type}: {c.error_message}" for c in failed],
        "mlflow_run_id": run_id,
        "run_key": run_key,
        "trace_id": record.trace_id,
    }
