"""The per-request knobs of `process_request`, grouped: `RequestOptions`.

    options = RequestOptions(task_type="math", user_id="u1", require_consensus=True)
    result = await orch.process_request("What is 17 * 23?", options)
    result = await orch.process_request("What is 17 * 23?", task_type="math", user_id="u1")  # the same

Keywords given to `process_request` override the fields of the options passed with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypedDict

from orchestra.compat import deprecated
from orchestra.errors import InvalidRequest
from orchestra.types import TaskComplexity

if TYPE_CHECKING:
    from pydantic import BaseModel

    from orchestra.sandbox.checks import CodeCheck


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """How to serve one request. Every field has a default; the values are checked when the
    request runs (a bad one is an `InvalidRequest`, and the request is still logged).

    >>> RequestOptions(task_type="math").merged({"user_id": "u1"}).user_id
    'u1'
    """

    task_type: str | None = None
    """None: `framework.default_task_type`."""
    user_id: str = "anonymous"
    session_id: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    """None: each provider's configured temperature."""
    max_tokens: int | None = None
    tags: Mapping[str, str] | None = None
    """Logged with the request (MLflow trace tags, the request table's `tags_json`)."""
    timeout: float | None = None
    """Seconds for the whole request, retries and failover included (None:
    `performance.request_timeout`)."""
    require_consensus: bool | None = None
    """None: as the matched routing rule says."""
    min_providers: int = 1
    complexity_override: TaskComplexity | str | None = None
    execution: CodeCheck | None = None
    """The tests execution consensus runs the answers' code against."""
    schema: type[BaseModel] | None = None
    """The pydantic model structured consensus reads the answers as."""
    request_id: str | None = None
    """The id the request is logged under: 32 lowercase hex digits (None: a new random id). A
    sweep passes the id it predicts for each prompt (`tracking.request_ids`), so a request run
    again writes the same row and trace instead of a second one."""

    def merged(self, overrides: Mapping[str, Any]) -> RequestOptions:
        """These options with `overrides` (field name -> value) applied; unknown names are an error."""
        if not overrides:
            return self
        unknown = sorted(set(overrides) - OPTION_NAMES)
        if unknown:
            raise TypeError(
                f"process_request got unknown option(s) {', '.join(unknown)}; "
                f"options: {', '.join(sorted(OPTION_NAMES))}"
            )
        return replace(self, **overrides)


OPTION_NAMES = frozenset(f.name for f in fields(RequestOptions))
DEFAULT_OPTIONS = RequestOptions()


def request_options(options: RequestOptions | str | None, knobs: Mapping[str, Any]) -> RequestOptions:
    """`options` with the keywords applied, as `process_request` reads them: a string is the
    original signature's positional task type (deprecated); anything else but `RequestOptions`
    is an `InvalidRequest`."""
    if isinstance(options, str):
        deprecated("process_request(prompt, task_type)", "pass task_type=... by keyword", stacklevel=4)
        options, knobs = DEFAULT_OPTIONS, {"task_type": options, **knobs}
    elif options is None:
        options = DEFAULT_OPTIONS
    elif not isinstance(options, RequestOptions):
        raise InvalidRequest(
            f"options must be a RequestOptions, not {type(options).__name__} "
            "(or pass the options as keywords: task_type=..., user_id=...)"
        )
    return options.merged(knobs)


class RequestKnobs(TypedDict, total=False):
    """`RequestOptions` fields as keywords of `process_request` (for type checkers)."""

    task_type: str | None
    user_id: str
    session_id: str | None
    system_prompt: str | None
    temperature: float | None
    max_tokens: int | None
    tags: Mapping[str, str] | None
    timeout: float | None
    require_consensus: bool | None
    min_providers: int
    complexity_override: TaskComplexity | str | None
    execution: CodeCheck | None
    schema: type[BaseModel] | None
    request_id: str | None
