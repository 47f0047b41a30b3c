"""HTTP statuses and Retry-After headers -> orchestra's provider errors, in one place.

Every connector maps its SDK's exceptions by type and status code through `error_for_status`,
never by matching message text.

    error_for_status("openai", 429, "slow down", {"retry-after": "2"})  # RateLimited(retry_after=2.0)
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from orchestra.errors import (
    AuthenticationFailed,
    BadProviderRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(float(lowered["retry-after-ms"]) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(parsed.timestamp() - time.time(), 0.0)


def error_for_status(
    provider: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """The provider error for an HTTP status (429 -> RateLimited, 5xx -> ProviderUnavailable, ...)."""
    text = f"HTTP {status}: {message}"
    retry_after = retry_after_seconds(headers)
    if status == 429:
        return RateLimited(text, provider=provider, status=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthenticationFailed(text, provider=provider, status=status)
    if status in RETRYABLE_STATUSES or status >= 500:
        return ProviderUnavailable(text, provider=provider, status=status, retry_after=retry_after)
    return BadProviderRequest(text, provider=provider, status=status)


def body_message(body: Any) -> str | None:
    """The provider's own message in an error body: `{"error": {"message": ...}}` or `{"message": ...}`."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("message")
    return None
