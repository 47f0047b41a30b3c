"""What is recorded for each request: one `RequestRecord` with a `CallRecord` per provider call.

Records are cheap to build on the request's hot path (plain slotted dataclasses); turning them
into table rows and trace spans happens later, on the writer thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
