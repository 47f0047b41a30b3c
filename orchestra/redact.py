"""Keep API keys out of logs, MLflow params, tags, traces, artifacts and CLI output.

Two nets: the known secrets (registered from config and from environment variables whose
names end in _API_KEY, _TOKEN or _SECRET), masked wherever any 8 or more consecutive characters
of one appear; and detectors of common key formats (OpenAI and Anthropic `sk-...`, Google
`AIza...`, AWS `AKIA...`, bearer tokens, `api_key=...`), which can be switched off with
`set_pattern_detection(False)` (`tracking.redact_patterns`). Passwords in URLs
(`scheme://user:password@host`) are always masked.

    SECRETS.register("sk-test-1234567890abcdef")
    SECRETS.redact("key sk-test-1234567890abcdef failed")  # "key [REDACTED] failed"
    SECRETS.redact("its tail 1234567890abcdef")            # "its tail [REDACTED]"

Every piece is found in one pass of an Aho-Corasick automaton (`ahocorasick_rs`, compiled
Rust) over the text: the automaton holds every 8-character window of every secret and the
literal anchors of the detectors; a detector's regular expression runs only where its anchor
was found. A 10 kB text costs tens of microseconds (`benchmarks/redaction.py`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick_rs

MASK = "[REDACTED]"
URL_MASK = "***"
"""How a password inside a URL is shown: `postgresql://user:***@host/db`."""
URL_PASSWORD = "url-password"
FRAGMENT_LENGTH = 8
"""A secret is masked wherever this many of its consecutive characters appear (and shorter
values are not registered: they are not credentials)."""
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY")
_KEY_CHARACTER = re.compile(r"[A-Za-z0-9_\-]")


@dataclass(frozen=True)
class Detector:
    """A key format: found where one of `anchors` occurs, `pattern` matched from `back`
    characters before it; its group "secret" (or the whole match) is masked."""

    name: str
    anchors: tuple[str, ...]
    pattern: re.Pattern[str]
    back: int = 0
    word_start: bool = False
    """The match must not continue a key-like word on its left (`task-...` is not `sk-...`)."""
    always: bool = False
    """On even when pattern detection is switched off."""

    def span(self, text: str, anchor_start: int) -> tuple[int, int] | None:
        start = anchor_start - self.back
        if start < 0:
            return None
        if self.word_start and start > 0 and _KEY_CHARACTER.match(text, start - 1):
            return None
        match = self.pattern.match(text, start)
        if match is None:
            return None
        group = "secret" if "secret" in self.pattern.groupindex else 0
        return match.span(group)


DETECTORS: tuple[Detector, ...] = (
    Detector("openai-anthropic", ("sk-",), re.compile(r"sk-[A-Za-z0-9_\-]{16,}"), word_start=True),
    Detector("google", ("AIza",), re.compile(r"AIza[0-9A-Za-z_\-]{20,}"), word_start=True),
    Detector(
        "aws", ("AKIA", "ASIA"), re.compile(r"A(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z])"), word_start=True
    ),
    Detector(
        "bearer",
        ("earer ", "EARER "),
        re.compile(r"[Bb](?i:earer) +(?P<secret>[A-Za-z0-9._~+/\-]{16,}=*)"),
        back=1,
    ),
    Detector(
        "api-key-parameter",
        ("key=", "KEY=", "Key="),
        re.compile(r"(?i:api[_-]key)=(?P<secret>[A-Za-z0-9._\-]{8,})"),
        back=4,
    ),
    Detector(URL_PASSWORD, ("://",), re.compile(r"://[^\s/:@]*:(?P<secret>[^\s/@]+)@"), always=True),
)


def _pieces(value: str) -> list[str]:
    """Every window of `FRAGMENT_LENGTH` characters of `value`."""
    return [value[i : i + FRAGMENT_LENGTH] for i in range(len(value) - FRAGMENT_LENGTH + 1)]


class _Matcher:
    """An immutable snapshot: secrets and detectors compiled into one automaton."""

    def __init__(self, values: frozenset[str], patterns: bool) -> None:
        grams = sorted({piece for value in values for piece in _pieces(value)})
        self._gram_count = len(grams)
        self._anchored: list[Detector] = []
        anchors: list[str] = []
        for detector in DETECTORS:
            if patterns or detector.always:
                for anchor in detector.anchors:
                    anchors.append(anchor)
                    self._anchored.append(detector)
        self._automaton = ahocorasick_rs.AhoCorasick(
            grams + anchors, implementation=ahocorasick_rs.Implementation.DFA
        )

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """The (start, end, mask) ranges to mask, merged and in order. A URL's password is
        shown as `***` (`user:***@host`), everything else as `[REDACTED]`."""
        try:
            matches = self._automaton.find_matches_as_indexes(text, overlapping=True)
        except UnicodeEncodeError:  # lone surrogates: search a copy with each one replaced by "?"
            probe = text.encode("utf-8", "replace").decode("utf-8")
            matches = self._automaton.find_matches_as_indexes(probe, overlapping=True)
        found: list[tuple[int, int, bool]] = []
        for index, start, end in matches:
            if index < self._gram_count:
                found.append((start, end, False))
                continue
            detector = self._anchored[index - self._gram_count]
            if (span := detector.span(text, start)) is not None:
                found.append((*span, detector.name == URL_PASSWORD))
        if not found:
            return []
        found.sort()
        groups = [[found[0]]]
        for item in found[1:]:
            if item[0] <= max(end for _, end, _ in groups[-1]):
                groups[-1].append(item)
            else:
                groups.append([item])
        merged = []
        for group in groups:
            start, end = group[0][0], max(end for _, end, _ in group)
            in_url = any(u_start <= start and end <= u_end for u_start, u_end, url in group if url)
            merged.append((start, end, URL_MASK if in_url else MASK))
        return merged

    def redact(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        pieces, position = [], 0
        for start, end, mask in spans:
            pieces += [text[position:start], mask]
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


class SecretRegistry:
    """The process's known secret values and the pattern switch; thread-safe."""

    def __init__(self, *, patterns: bool = True) -> None:
        self._values: frozenset[str] = frozenset()
        self._patterns = patterns
        self._lock = threading.Lock()
        self._matcher = _Matcher(self._values, patterns)

    def register(self, value: str | None) -> None:
        """Mask `value` (and every 8-character piece of it) from now on; shorter values are ignored."""
        if not value or len(value) < FRAGMENT_LENGTH or value in self._values:
            return
        with self._lock:
            self._values = self._values | {value}
            self._matcher = _Matcher(self._values, self._patterns)

    def register_environment(self) -> None:
        """Register every environment variable that looks like a credential."""
        for name, value in os.environ.items():
            if name.upper().endswith(_SECRET_ENV_SUFFIXES):
                self.register(value)

    def use_patterns(self, enabled: bool) -> None:
        """Switch the key-format detectors on or off (registered secrets are always masked)."""
        with self._lock:
            if enabled != self._patterns:
                self._patterns = enabled
                self._matcher = _Matcher(self._values, enabled)

    @property
    def patterns(self) -> bool:
        return self._patterns

    def redact(self, text: str) -> str:
        """`text` with every registered secret, any 8+ character piece of one, and every
        detected key replaced by `[REDACTED]`."""
        if not text:
            return text
        return self._matcher.redact(text)

    def contains_secret(self, text: str) -> bool:
        """Whether `redact` would change `text`."""
        return bool(text) and bool(self._matcher.spans(text))

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


def set_pattern_detection(enabled: bool) -> None:
    """Turn the key-format detectors of `SECRETS` on or off (`tracking.redact_patterns`)."""
    SECRETS.use_patterns(enabled)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in every record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRETS.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = SECRETS.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = SECRETS.redact(record.stack_info)
        return True


class RedactingWriter(io.TextIOBase):
    """A text stream that masks secrets in whatever is written to `target`, a line at a time
    (a secret split over two writes of one line is still found)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
        if cut >= 0:
            ready, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            self._target.write(SECRETS.redact(ready))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._target.write(SECRETS.redact(self._pending))
            self._pending = ""
        self._target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")


@contextlib.contextmanager
def redacted_output() -> Iterator[None]:
    """Within the block, everything printed to `sys.stdout` and `sys.stderr` is masked (the CLI)."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingWriter(stdout), RedactingWriter(stderr)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = stdout, stderr
