"""Make what is logged storable and secret-free before it reaches the journal.

Every string inside a record (prompt, system prompt, response, error messages, call contents
and errors, tags, routing and consensus dicts, dict keys) is checked for

- invalid text: lone surrogates (what `surrogateescape` decoding leaves in a `str`), which no
  UTF-8 store accepts, and NUL characters, which PostgreSQL refuses. They are replaced with
  U+FFFD and the record is flagged, never dropped;
- secrets: `SECRETS.redact` masks registered keys and key-shaped strings.

    clean, replaced = storable({"prompt": "caf\\udce9", "tags": {}})
    clean["prompt"], replaced          # ("caf\\ufffd", True)

Most records hold neither, so the check runs once over all their strings joined; only a record
with something to change is rebuilt string by string.
"""

from __future__ import annotations

import re
from typing import Any

from orchestra.redact import SECRETS

INVALID_TEXT_TAG = "orchestra.invalid_text"
"""Tag set to 'replaced' on a record whose text held characters no store accepts."""
REPLACEMENT = "\ufffd"
_INVALID = re.compile("[\ud800-\udfff\x00]")
_SEPARATOR = "\x1f"
"""Joins the strings for the one-pass check. A mask that matches a single string also matches
it inside the joined text (masking finds substrings); a match across the separator only sends
the record down the exact, string-by-string path."""


def storable(value: Any) -> tuple[Any, bool]:
    """`value` (dicts, lists, strings, numbers) with invalid text replaced and secrets masked,
    and whether invalid text was replaced. Returns `value` itself when nothing needed changing."""
    strings: list[str] = []
    _collect(value, strings)
    joined = _SEPARATOR.join(strings)
    invalid = _has_invalid(joined)
    if not invalid and SECRETS.redact(joined) == joined:
        return value, False
    return SECRETS.redact_obj(_replace_invalid(value) if invalid else value), invalid


def storable_text(text: str) -> str:
    """One string made storable: invalid characters replaced, secrets masked."""
    return SECRETS.redact(_INVALID.sub(REPLACEMENT, text))


def _has_invalid(text: str) -> bool:
    """NUL, or a lone surrogate (which only text that is not ASCII can hold, and which UTF-8
    cannot encode: the codec finds it faster than a search would)."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str):
                out.append(key)
            _collect(inner, out)
    elif isinstance(value, list | tuple):
        for inner in value:
            _collect(inner, out)


def _replace_invalid(value: Any) -> Any:
    if isinstance(value, str):
        return _INVALID.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_replace_invalid(key): _replace_invalid(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_invalid(inner) for inner in value]
    return value
