"""What a consensus strategy knows about the request besides its answers: the `TaskContext`.

The engine builds one per request that needs a consensus and passes it as an argument:

    outcome = await strategy.decide(responses, TaskContext(task_type="code", prompt=prompt))

`execution` (the tests execution consensus runs, a `CodeCheck`) and `schema` (the pydantic
model structured consensus reads answers as) come from `RequestOptions`, else from the
context-variable API kept for code that wraps `process_request`:

    with execution_check(CodeCheck(tests=["assert f(2) == 4"])):
        await orch.process_request("Write f(x) returning x squared.", task_type="code")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from orchestra.sandbox.checks import CodeCheck

CURRENT_CHECK: ContextVar[CodeCheck | None] = ContextVar("orchestra_execution_check", default=None)
CURRENT_SCHEMA: ContextVar[type[BaseModel] | None] = ContextVar("orchestra_structured_schema", default=None)


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The request a consensus is formed for.

    >>> TaskContext(task_type="qa", prompt="2+2?").as_dict()["task_type"]
    'qa'
    """

    task_type: str = ""
    prompt: str = ""
    request_id: str | None = None
    execution: CodeCheck | None = None
    schema: type[BaseModel] | None = None

    @classmethod
    def for_request(
        cls,
        task_type: str,
        prompt: str,
        request_id: str | None,
        *,
        execution: CodeCheck | None = None,
        schema: type[BaseModel] | None = None,
    ) -> TaskContext:
        """The context of a request: `execution` and `schema` as given, else as set around the
        call with `execution_check(...)` / `structured_output(...)`."""
        return cls(
            task_type,
            prompt,
            request_id,
            execution if execution is not None else CURRENT_CHECK.get(),
            schema if schema is not None else CURRENT_SCHEMA.get(),
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | TaskContext | None) -> TaskContext:
        """From the dict strategies of the original interface receive (unknown keys ignored)."""
        if isinstance(values, TaskContext):
            return values
        values = values or {}
        return cls.for_request(
            str(values.get("task_type", "")),
            str(values.get("prompt", "")),
            values.get("request_id"),
            execution=values.get("execution"),
            schema=values.get("schema"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The `task_context` dict of the original two-method interface."""
        context: dict[str, Any] = {
            "task_type": self.task_type,
            "prompt": self.prompt,
            "request_id": self.request_id,
        }
        if self.execution is not None:
            context["execution"] = self.execution
        if self.schema is not None:
            context["schema"] = self.schema
        return context


@contextlib.contextmanager
def execution_check(check: CodeCheck) -> Iterator[CodeCheck]:
    """Within this block, execution consensus checks candidates against `check` (unless a
    request's `RequestOptions.execution` names other tests)."""
    token = CURRENT_CHECK.set(check)
    try:
        yield check
    finally:
        CURRENT_CHECK.reset(token)


@contextlib.contextmanager
def structured_output(schema: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Within this block, structured consensus reads answers as `schema` (unless a request's
    `RequestOptions.schema` names another model)."""
    token = CURRENT_SCHEMA.set(schema)
    try:
        yield schema
    finally:
        CURRENT_SCHEMA.reset(token)
