"""Small wire helpers shared by the fake servers: word counts, stream pieces, SSE and JSON encoding.

split_pieces("echo: hi there") == ["echo:", " hi", " there"]
"""

from __future__ import annotations

import json
import re
from typing import Any

_PIECE = re.compile(r"\s*\S+")
LOGPROB = -0.05
"""The log-probability the fakes report for every token."""


def count_words(*texts: str) -> int:
    """Whitespace-separated words in all `texts`. Example: ``count_words("a b", "c") == 3``."""
    return sum(len(text.split()) for text in texts)


def split_pieces(text: str) -> list[str]:
    """`text` cut into one piece per word, each with its leading space; the pieces join back to `text`.

    split_pieces("") == [""]
    """
    pieces = _PIECE.findall(text)
    if not pieces:
        return [text]
    rest = text[sum(map(len, pieces)) :]
    if rest:
        pieces[-1] += rest
    return pieces


def dumps(data: Any) -> bytes:
    """Compact JSON bytes. Example: ``dumps({"a": 1}) == b'{"a":1}'``."""
    return json.dumps(data, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless it is already a str.

    sse({"a": 1}, event="x") == b'event: x\\ndata: {"a":1}\\n\\n'
    """
    payload = data.encode() if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


def text_of(content: Any) -> str:
    """The text of a message content: a string, or a list of parts with ``text`` (joined by newlines).

    text_of([{"type": "text", "text": "a"}, {"text": "b"}]) == "a\\nb"
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""
