"""Splitting a long document into chunks of at most `max_chars`, on paragraph, then sentence,
then word boundaries (a hard cut only for a single word longer than a chunk).

split_text("First paragraph.\\n\\nSecond one.", max_chars=20)   # ["First paragraph.", "Second one."]

A dozen lines of stdlib; the text-splitter packages (langchain-text-splitters, semchunk) would
bring a dependency tree or a tokenizer for what is here a character budget.
"""

from __future__ import annotations

import re

from orchestra.errors import InvalidRequest

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str, max_chars: int) -> list[str]:
    """Chunks of at most `max_chars`, in order, covering all of `text` but its blank lines."""
    if max_chars < 1:
        raise InvalidRequest(f"max_chars must be >= 1 (got {max_chars})")
    pieces: list[str] = []
    for paragraph in _PARAGRAPHS.split(text.strip()):
        pieces += _fit(paragraph.strip(), max_chars)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= max_chars:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return [chunk for chunk in chunks if chunk]


def _fit(paragraph: str, max_chars: int) -> list[str]:
    if len(paragraph) <= max_chars:
        return [paragraph]
    for pattern in (_SENTENCES, re.compile(r"\s+")):
        parts = [p for p in pattern.split(paragraph) if p]
        if len(parts) > 1:
            out: list[str] = []
            for part in parts:
                for piece in _fit(part, max_chars):
                    if out and len(out[-1]) + 1 + len(piece) <= max_chars:
                        out[-1] += " " + piece
                    else:
                        out.append(piece)
            return out
    return [paragraph[i : i + max_chars] for i in range(0, len(paragraph), max_chars)]
