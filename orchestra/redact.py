"""Keep API keys out of logs, MLflow params, tags, traces and artifacts.

Two nets: the exact values of known secrets (registered from config and from environment
variables whose names end in _API_KEY, _TOKEN or _SECRET), and patterns of common key formats.

    SECRETS.register("sk-test-1234567890abcdef")
    SECRETS.redact("key sk-test-1234567890abcdef failed")  # "key [REDACTED] failed"
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"
_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._\-]{16,}"),
    re.compile(r"(?i)(?<=api[_-]key=)[A-Za-z0-9._\-]{8,}"),
]
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY")
_MIN_SECRET_LENGTH = 8


class SecretRegistry:
    """The process's known secret values; thread-safe."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            with self._lock:
                self._values.add(value)

    def register_environment(self) -> None:
        """Register every environment variable that looks like a credential."""
        for name, value in os.environ.items():
            if name.upper().endswith(_SECRET_ENV_SUFFIXES):
                self.register(value)

    def redact(self, text: str) -> str:
        if not text:
            return text
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    def redact_obj(self, value: Any) -> Any:
        """`redact` applied to every string inside dicts, lists and tuples."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self.redact_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_obj(v) for v in value]
        return value


SECRETS = SecretRegistry()
"""The process-wide registry: secrets must be masked wherever text leaves the process."""


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRETS.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
