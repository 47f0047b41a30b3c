"""What is recorded for each request: one `RequestRecord` with a `CallRecord` per provider call.

Records are cheap to build on the request's hot path (plain slotted dataclasses with typed
fields); `Orchestra` is their only writer. Turning them into journal payloads, table rows and
trace spans is tracking's job (`orchestra.tracking.codec`, `rows`, `spans`), done later, on the
writer thread.

>>> call = CallRecord("gpt-4", "gpt-4-0613", start_ns=0, end_ns=1, ok=True, attempts=2)
>>> call.attempts, call.cache_hit, call.retried_errors
(2, False, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RequestStatus = Literal["ok", "error", "abandoned"]
"""`abandoned`: a streamed request nobody read (see `orchestra.engine.streaming`)."""


@dataclass(frozen=True, slots=True)
class RetriedError:
    """One failed attempt of a call that was then retried (or given up on)."""

    error_type: str
    message: str
    status: int | None
    waited_s: float


@dataclass(slots=True)
class CallRecord:
    """One attempt to get an answer from one provider (its retries included).

    `error` is the exception itself while the request runs (so the engine tells errors apart by
    type); it is not stored: `error_type` and `error_message` are.
    """

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
    attempts: int = 1
    """Attempts made through the provider's guard (1 when the first succeeded)."""
    retried_errors: list[RetriedError] = field(default_factory=list)
    cache_hit: bool = False
    """Answered from the response cache (cost 0; says nothing new about the provider)."""
    rate_limit_wait_ms: float = 0.0
    """Time spent waiting for the provider's rate limiter."""
    status: int | None = None
    """The provider's HTTP status, for a failed call that had one."""
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    error: BaseException | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class RequestRecord:
    """Everything about one `process_request` call, failed ones included.

    `routing` and `consensus` hold the decision and the outcome as plain data (what is stored);
    the typed objects are on the `RequestResult` the caller gets.
    """

    request_id: str
    run_key: str
    start_ns: int
    end_ns: int
    user_id: str
    session_id: str | None
    task_type: str
    prompt: str
    status: RequestStatus = "ok"
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

    @property
    def cache_hit(self) -> bool:
        """Whether an answer came from the response cache."""
        return any(c.ok and c.cache_hit for c in self.calls)

    def add_calls(self, calls: list[CallRecord], latency_ms: float) -> None:
        """Record `calls` (one wave or several, `latency_ms` long) and add up the successful ones' usage."""
        self.calls.extend(calls)
        self.latency_ms += latency_ms
        for call in calls:
            if call.ok:
                self.providers_used.append(call.provider)
                self.input_tokens += call.input_tokens
                self.output_tokens += call.output_tokens
                self.cost_usd += call.cost_usd


def trace_id_for(request_id: str) -> str:
    """The MLflow trace id of a request (request ids are 32 hex digits, like OTel trace ids).

    >>> trace_id_for("0123456789abcdef0123456789abcdef")
    'tr-0123456789abcdef0123456789abcdef'
    """
    return f"tr-{request_id}"
