"""Checking a request's arguments before anything is routed or called.

    validate_request("hi", RequestOptions(user_id="u1", temperature=5), request_id="ab12")
    # InvalidRequest: temperature must be a number from 0 to 2 (got 5)

Every problem is an `InvalidRequest` naming the argument and carrying the request id; the
request is still logged (with its text made storable by `storable_text`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from orchestra.errors import InvalidRequest
from orchestra.tracking.sanitize import INVALID_TEXT_TAG
from orchestra.types import TaskComplexity

if TYPE_CHECKING:
    from orchestra.engine.options import RequestOptions

TEMPERATURE_RANGE = (0.0, 2.0)
"""What every provider accepts (OpenAI's range; Anthropic's and Gemini's lie within it)."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_REQUEST_ID = re.compile("[0-9a-f]{32}")


def validate_request(prompt: Any, options: RequestOptions, request_id: str) -> None:
    """Raise `InvalidRequest` (with `request_id`) for the first unusable argument: the options'
    types are checked here, whatever their annotations say (they come from user code)."""
    for problem in _problems(prompt, options):
        raise InvalidRequest(problem, request_id=request_id)


def _problems(prompt: Any, a: RequestOptions) -> Iterator[str]:
    if not isinstance(prompt, str) or not prompt.strip():
        yield "prompt must be a non-empty string"
    if not isinstance(a.user_id, str) or not a.user_id:
        yield "user_id must be a non-empty string"
    if not isinstance(a.task_type, str) or not a.task_type:
        yield f"task_type must be a non-empty string (got {_short(a.task_type)})"
    for name in ("session_id", "system_prompt"):
        value = getattr(a, name)
        if value is not None and not isinstance(value, str):
            yield f"{name} must be a string or None (got {type(value).__name__})"
    if a.tags is not None and (
        not isinstance(a.tags, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in a.tags.items())
    ):
        yield "tags must be a mapping of strings to strings"
    for name, text in _texts(prompt, a):
        if (found := _LONE_SURROGATE.search(text)) is not None:
            yield (
                f"{name} holds a lone surrogate ({found.group()!a} at position {found.start()}), which is "
                "not valid Unicode text; decode bytes with errors='replace' (or 'backslashreplace')"
            )
    if not _is_int(a.min_providers) or a.min_providers < 1:
        yield f"min_providers must be an integer >= 1 (got {_short(a.min_providers)})"
    if a.complexity_override is not None and a.complexity_override not in {c.value for c in TaskComplexity}:
        allowed = ", ".join(c.value for c in TaskComplexity)
        yield f"complexity_override must be one of {allowed} or None (got {_short(a.complexity_override)})"
    if a.require_consensus is not None and not isinstance(a.require_consensus, bool):
        yield f"require_consensus must be True, False or None (got {_short(a.require_consensus)})"
    low, high = TEMPERATURE_RANGE
    if a.temperature is not None and not (_is_number(a.temperature) and low <= a.temperature <= high):
        yield f"temperature must be a number from {low:g} to {high:g} (got {_short(a.temperature)})"
    if a.max_tokens is not None and (not _is_int(a.max_tokens) or a.max_tokens < 1):
        yield f"max_tokens must be an integer >= 1 (got {_short(a.max_tokens)})"
    if a.timeout is not None and (not _is_number(a.timeout) or a.timeout <= 0):
        yield f"timeout must be a number of seconds > 0 (got {_short(a.timeout)})"
    if a.request_id is not None and not is_request_id(a.request_id):
        yield f"request_id must be 32 lowercase hex digits or None (got {_short(a.request_id)})"


def is_request_id(value: object) -> TypeGuard[str]:
    """Whether `value` can be a request's id (32 lowercase hex digits, like an OTel trace id).

    >>> is_request_id("0123456789abcdef0123456789abcdef"), is_request_id("req-1")
    (True, False)
    """
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def _texts(prompt: Any, a: RequestOptions) -> list[tuple[str, str]]:
    """Every text field, by name (tags as tags[<key>])."""
    texts = [("prompt", prompt)] if isinstance(prompt, str) else []
    texts += [
        (name, value)
        for name in ("system_prompt", "user_id", "session_id", "task_type")
        if isinstance(value := getattr(a, name), str)
    ]
    if isinstance(a.tags, Mapping):
        for key, value in a.tags.items():
            texts += [(f"tags key {_short(key)}", key)] if isinstance(key, str) else []
            texts += [(f"tags[{_short(key)}]", value)] if isinstance(value, str) else []
    return texts


def record_fields(prompt: Any, a: RequestOptions) -> dict[str, Any]:
    """The text fields of the request's log record, made storable whatever was passed: every
    request is logged, the ones refused for bad arguments too."""

    def text(value: Any) -> str:
        return storable_text(value if isinstance(value, str) else repr(value))

    tags = a.tags if isinstance(a.tags, Mapping) else {}
    stored_tags = {text(k): text(v) for k, v in tags.items()}
    fields: dict[str, Any] = {
        "user_id": text(a.user_id),
        "session_id": None if a.session_id is None else text(a.session_id),
        "task_type": text(a.task_type),
        "prompt": text(prompt),
        "system_prompt": None if a.system_prompt is None else text(a.system_prompt),
        "tags": stored_tags,
    }
    raw = [a.user_id, a.session_id, a.task_type, prompt, a.system_prompt, *tags, *tags.values()]
    replaced = any(isinstance(value, str) and _LONE_SURROGATE.search(value) for value in raw)
    if replaced:  # flagged as the tracker's ingest flags text it had to replace
        stored_tags[INVALID_TEXT_TAG] = "replaced"
    return fields


def storable_text(value: str) -> str:
    """`value` with each lone surrogate replaced by U+FFFD, so that it can be logged and stored."""
    return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any) -> str:
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
