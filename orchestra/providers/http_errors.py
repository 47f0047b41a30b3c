"""HTTP statuses and Retry-After headers -> orchestra's provider errors, in one place.

Every connector maps its SDK's exceptions by type and status code through `error_for_status`,
never by matching message text.

    error_for_status("openai", 429, "slow down", {"retry-after": "2"})  # RateLimited(retry_after=2.0)
    error_for_status("openai", 429, "slow down", {"retry-after": "soon"})  # retry_after=None,
                                                                          # retry_after_header="soon"
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from orchestra.errors import (
    AuthenticationFailed,
    BadProviderRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


ABSURD_RETRY_AFTER_S = 24 * 3600.0
"""A Retry-After longer than a day is taken for a server's mistake, not a request to wait."""


def retry_after_header(headers: Mapping[str, str] | None) -> str | None:
    """The raw `retry-after-ms` (suffixed " ms") or `Retry-After` value, as the server sent it."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        return f"{lowered['retry-after-ms']} ms"
    return lowered.get("retry-after")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); None
    when absent or unusable: not a number or date, negative, infinite, or more than a day."""
    raw = retry_after_header(headers)
    if raw is None:
        return None
    if raw.endswith(" ms"):
        return usable_retry_after(_number(raw.removesuffix(" ms")), scale=1e-3)
    number = _number(raw)
    if number is not None:
        return usable_retry_after(number)
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return usable_retry_after(max(parsed.timestamp() - time.time(), 0.0))


def usable_retry_after(seconds: float | None, scale: float = 1.0) -> float | None:
    """`seconds * scale` if it is a wait worth honouring (finite, >= 0, at most a day), else None."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    seconds *= scale
    return seconds if seconds <= ABSURD_RETRY_AFTER_S else None


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def error_for_status(
    provider: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """The provider error for an HTTP status (429 -> RateLimited, 5xx -> ProviderUnavailable, ...)."""
    text = f"HTTP {status}: {message}"
    retry_after, sent = retry_after_seconds(headers), retry_after_header(headers)
    if status == 429:
        return RateLimited(
            text, provider=provider, status=status, retry_after=retry_after, retry_after_header=sent
        )
    if status in (401, 403):
        return AuthenticationFailed(text, provider=provider, status=status)
    if status in RETRYABLE_STATUSES or status >= 500:
        return ProviderUnavailable(
            text, provider=provider, status=status, retry_after=retry_after, retry_after_header=sent
        )
    return BadProviderRequest(text, provider=provider, status=status)


def body_message(body: Any) -> str | None:
    """The provider's own message in an error body: `{"error": {"message": ...}}` or `{"message": ...}`."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("message")
    return None
