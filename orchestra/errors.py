"""One exception tree for everything orchestra raises.

Every error carries structured fields (provider, status, retry_after, request_id) so callers
branch on types and attributes, never on message text.

    try:
        await orch.process_request("", task_type="general", user_id="u1")
    except InvalidRequest as err:
        print(err.request_id)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestra.redact import SECRETS


class OrchestraError(Exception):
    """Root of every error orchestra raises. Its message is masked (`SECRETS.redact`): an error
    may end on a terminal, in a log or in MLflow."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        message = SECRETS.redact(message)
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class ConfigError(OrchestraError):
    """A configuration file or dict is invalid; the message names the key and allowed values."""


class InvalidRequest(OrchestraError):
    """The request itself is unusable: empty prompt, impossible `min_providers`, ..."""


class ModelProviderNotFound(OrchestraError):
    """A provider named in a rule or call is not configured or registered."""

    def __init__(self, provider: str, known: Sequence[str], *, request_id: str | None = None):
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"provider {provider!r} is not configured; configured providers: {known_text}",
            request_id=request_id,
        )
        self.provider = provider
        self.known = list(known)


class NoRouteFound(OrchestraError):
    """No routing rule matches the task type and complexity, and there is no default rule."""


class ProviderError(OrchestraError):
    """A provider call failed. `retryable` tells resilience policies whether to try again.

    `retry_after` is the server's usable Retry-After in seconds; `retry_after_header` the value
    as sent (kept when it was unusable, e.g. "soon", so the hold can say so)."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        retry_after_header: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}", request_id=request_id)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.retry_after_header = retry_after_header


class ProviderTimeout(ProviderError):
    """The provider did not answer within its timeout."""

    retryable = True


class ProviderUnavailable(ProviderError):
    """The provider failed in a way worth retrying (connection error, 5xx, scripted outage)."""

    retryable = True


class RateLimited(ProviderUnavailable):
    """The provider answered 429; `retry_after` holds its Retry-After, in seconds, if sent."""


class MalformedResponse(ProviderError):
    """The provider answered with a body that could not be parsed (a proxy hiccup, usually)."""

    retryable = True


class AuthenticationFailed(ProviderError):
    """The provider refused the credentials (401/403), or none are configured."""


class BadProviderRequest(ProviderError):
    """The provider rejected the request itself (400/404/422): retrying will not help."""


class ProviderCoolingDown(ProviderError):
    """The provider's circuit is open after repeated failures; it is skipped until it recovers."""


class BudgetExceeded(ProviderError):
    """A call was refused before it was made: its worst-case cost would pass a spend limit."""


class PromptNotRecorded(ProviderError):
    """A replay provider was asked for a prompt its recorded dataset does not hold."""


@dataclass(frozen=True)
class CallFailure:
    """One failed provider call, as listed by `InsufficientResponses`."""

    provider: str
    error_type: str
    message: str


class InsufficientResponses(OrchestraError):
    """Fewer providers answered than the request needs; `failures` lists each failed call."""

    def __init__(
        self,
        needed: int,
        answered: int,
        failures: Sequence[CallFailure],
        *,
        request_id: str | None = None,
    ) -> None:
        detail = "; ".join(f"{f.provider}: {f.error_type}: {f.message}" for f in failures)
        super().__init__(
            f"needed {needed} answer(s), got {answered}" + (f" ({detail})" if detail else ""),
            request_id=request_id,
        )
        self.needed = needed
        self.answered = answered
        self.failures = list(failures)


class ConsensusError(OrchestraError):
    """Consensus could not be formed."""


class ConsensusTimeout(ConsensusError):
    """Too few providers answered in time for a consensus; `failures` lists who did not."""

    def __init__(self, message: str, failures: Sequence[CallFailure] = (), *, request_id: str | None = None):
        super().__init__(message, request_id=request_id)
        self.failures = list(failures)


class ConsensusNotReached(ConsensusError):
    """Answers disagreed below the configured thresholds and the policy is to raise."""


class StreamClosed(OrchestraError):
    """A streamed answer was closed by its consumer before it ended (logged as incomplete)."""


class StreamAbandoned(StreamClosed):
    """A streamed answer was never read: logged as `abandoned` when closed or collected unread,
    or at the next flush; reading it afterwards raises this."""


class AnalysisError(OrchestraError):
    """The data cannot support the requested analysis (too few rows, missing columns, bad values)."""


class TrackingStoreError(OrchestraError):
    """The MLflow tracking store could not be reached or written."""
