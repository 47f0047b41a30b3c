"""What `process_request` returns: a frozen `RequestResult` with typed metadata.

    result = await orch.process_request("Name three primes.", user_id="u1")
    result.response, result.metadata.answered_by, result.metadata.tokens.total
    result.metadata.routing.reason, result.metadata.calls[0].attempts    # typed
    result["response"], result["metadata"]["cost_usd"]                   # as the original dict
    result.as_dict()                                                     # a plain dict, JSON-ready

Both are read-only mappings in the shape of the original `{"response": ..., "metadata": {...}}`
dict, so existing code and notebooks keep working; `as_dict()` gives that dict itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra.consensus.base import ConsensusOutcome
    from orchestra.engine.records import CallRecord, RequestRecord
    from orchestra.routing.decision import RoutingDecision


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of the answers used (failed calls count none).

    >>> TokenUsage(input=12, output=30).total
    42
    """

    input: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output


@dataclass(frozen=True, eq=False)
class RequestMetadata(Mapping[str, Any]):
    """How a request was served: routing, every call, consensus, usage, cost, where it was logged.

    Also a read-only mapping with the keys of the original metadata dict (`as_dict()`).
    """

    request_id: str
    task_type: str
    user_id: str
    session_id: str | None
    routing: RoutingDecision | None
    """None when the request failed before it was routed."""
    consensus: ConsensusOutcome | None
    """None when no consensus ran."""
    calls: tuple[CallRecord, ...]
    """Every provider call, failed ones included, in the order they were made."""
    providers_used: tuple[str, ...]
    answered_by: str | None
    model: str | None
    confidence: float | None
    quality: float | None
    processing_time_ms: float
    latency_ms: float
    tokens: TokenUsage
    cost_usd: float
    mlflow_run_id: str | None
    run_key: str
    trace_id: str
    profile: Mapping[str, float] | None = None
    """Where the time went (with `Orchestra(enable_profiling=True)`): route, calls, consensus."""
    _dict: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @classmethod
    def of(
        cls,
        record: RequestRecord,
        decision: RoutingDecision | None,
        outcome: ConsensusOutcome | None,
        run_id: str | None,
        profile: Mapping[str, float] | None = None,
    ) -> RequestMetadata:
        """The metadata of a finished request, from its record."""
        return cls(
            request_id=record.request_id,
            task_type=record.task_type,
            user_id=record.user_id,
            session_id=record.session_id,
            routing=decision,
            consensus=outcome,
            calls=tuple(record.calls),
            providers_used=tuple(record.providers_used),
            answered_by=record.answered_by,
            model=record.answered_model,
            confidence=record.confidence,
            quality=record.quality,
            processing_time_ms=record.processing_time_ms,
            latency_ms=record.latency_ms,
            tokens=TokenUsage(record.input_tokens, record.output_tokens),
            cost_usd=record.cost_usd,
            mlflow_run_id=run_id,
            run_key=record.run_key,
            trace_id=record.trace_id,
            profile=profile,
        )

    @property
    def providers_called(self) -> tuple[str, ...]:
        return tuple(call.provider for call in self.calls)

    @property
    def failed_calls(self) -> tuple[CallRecord, ...]:
        return tuple(call for call in self.calls if not call.ok)

    @property
    def cache_hit(self) -> bool:
        return any(call.ok and call.cache_hit for call in self.calls)

    @property
    def confidence_calibrated(self) -> bool:
        """Whether the consensus confidence is a calibrated probability of a good answer."""
        return self.consensus is not None and bool(self.consensus.details.get("confidence_calibrated", False))

    @property
    def low_agreement(self) -> bool:
        return self.consensus is not None and self.consensus.low_agreement

    def as_dict(self) -> dict[str, Any]:
        """The original metadata dict (plain data; built once)."""
        if self._dict is None:
            object.__setattr__(self, "_dict", self._build_dict())
        assert self._dict is not None
        return self._dict

    def _build_dict(self) -> dict[str, Any]:
        decision, outcome = self.routing, self.consensus
        failed = self.failed_calls
        data: dict[str, Any] = {
            "request_id": self.request_id,
            "task_type": self.task_type,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "complexity": decision.complexity.value if decision else None,
            "complexity_score": decision.complexity_score if decision else None,
            "providers_used": list(self.providers_used),
            "providers_called": list(self.providers_called),
            "providers_failed": [
                {
                    "provider": c.provider,
                    "error_type": c.error_type,
                    "message": c.error_message,
                    "attempts": c.attempts,
                }
                for c in failed
            ],
            "calls": [
                {
                    "provider": c.provider,
                    "ok": c.ok,
                    "attempts": c.attempts,
                    "latency_ms": c.latency_ms,
                    "rate_limit_wait_ms": c.rate_limit_wait_ms,
                    "cost_usd": c.cost_usd,
                    "error_type": c.error_type,
                }
                for c in self.calls
            ],
            "answered_by": self.answered_by,
            "model": self.model,
            "routing_strategy": decision.strategy if decision else None,
            "routing_reason": decision.reason if decision else None,
            "propensities": dict(decision.propensities) if decision else {},
            "consensus_applied": outcome is not None,
            "consensus_method": outcome.method if outcome else None,
            "confidence": self.confidence,
            "confidence_calibrated": self.confidence_calibrated,
            "agreement": outcome.agreement if outcome else None,
            "low_agreement": self.low_agreement,
            "processing_time_ms": self.processing_time_ms,
            "latency_ms": self.latency_ms,
            "tokens": {"input": self.tokens.input, "output": self.tokens.output, "total": self.tokens.total},
            "cost_usd": self.cost_usd,
            "cache_hit": self.cache_hit,
            "quality": self.quality,
            "errors": [f"{c.provider}: {c.error_type}: {c.error_message}" for c in failed],
            "mlflow_run_id": self.mlflow_run_id,
            "run_key": self.run_key,
            "trace_id": self.trace_id,
        }
        if self.profile is not None:
            data["profile"] = dict(self.profile)
        return data

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __repr__(self) -> str:
        return (
            f"RequestMetadata(request_id={self.request_id!r}, answered_by={self.answered_by!r}, "
            f"calls={len(self.calls)}, cost_usd={self.cost_usd:.6g}, "
            f"processing_time_ms={self.processing_time_ms:.3f})"
        )


@dataclass(frozen=True, eq=False)
class RequestResult(Mapping[str, Any]):
    """The answer and how it was reached. A read-only mapping with the keys `response` and
    `metadata`, as the original result dict."""

    response: str
    metadata: RequestMetadata

    @property
    def request_id(self) -> str:
        return self.metadata.request_id

    def as_dict(self) -> dict[str, Any]:
        """`{"response": str, "metadata": dict}`: the original result, as plain data."""
        return {"response": self.response, "metadata": dict(self.metadata.as_dict())}

    def __getitem__(self, key: str) -> Any:
        if key == "response":
            return self.response
        if key == "metadata":
            return self.metadata
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("response", "metadata"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        text = self.response if len(self.response) <= 60 else self.response[:57] + "..."
        return f"RequestResult(response={text!r}, metadata={self.metadata!r})"

    def _repr_html_(self) -> str:
        """In Jupyter: the answer, then who answered at what cost and why, then each call."""
        from orchestra.display import fields_html, table_html

        meta = self.metadata
        decision, outcome = meta.routing, meta.consensus
        summary = {
            "response": self.response,
            "answered by": f"{meta.answered_by} ({meta.model})" if meta.model else meta.answered_by,
            "routing": None if decision is None else f"{decision.strategy}: {decision.reason}",
            "consensus": None
            if outcome is None
            else f"{outcome.method}, agreement {outcome.agreement:.2f}"
            + (" (low)" if outcome.low_agreement else ""),
            "confidence": meta.confidence,
            "quality": meta.quality,
            "tokens": f"{meta.tokens.input} in, {meta.tokens.output} out",
            "cost $": meta.cost_usd,
            "processing ms": meta.processing_time_ms,
            "MLflow": f"run {meta.mlflow_run_id}, trace {meta.trace_id}",
        }
        calls = [
            {
                "provider": c.provider,
                "model": c.model,
                "ok": c.ok,
                "attempts": c.attempts,
                "latency ms": c.latency_ms,
                "cost $": c.cost_usd,
                "cache": "hit" if c.cache_hit else "",
                "error": f"{c.error_type}: {c.error_message}" if not c.ok else "",
            }
            for c in meta.calls
        ]
        return fields_html(summary, caption=f"Request {meta.request_id}") + (
            table_html(calls, caption="Calls") if calls else ""
        )
