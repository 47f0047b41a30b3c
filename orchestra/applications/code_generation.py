"""`CodeGenerationApp`: generate code and tests, check them in the sandbox, review with consensus.

app = CodeGenerationApp(orch)
result = await app.generate_code("Write a function is_prime(n) that ...", include_tests=True)
result.code, result.tests, result.test_report.pass_fraction, result.metadata["code"]["providers_used"]
review = await app.review_code(result.code)

Every step is one `Orchestra.process_request`, so routing follows the config: requests have task
types `code_tests` (writing tests), `code` (writing the code) and `code_review`, and the rules
decide how many providers each gets and whether they need consensus, e.g. a simple `code` prompt
to one provider, a complex one to three with `consensus.per_task_type.code: execution`, and a
review to two with consensus. The tests are written by a separate request from the code (as in
CodeT) and handed to execution consensus as the request's `execution` option; the chosen code is
then run against them once more in the sandbox, so single-provider answers are checked too.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestra.engine.orchestrator import Orchestra
from orchestra.errors import InvalidRequest
from orchestra.sandbox.checks import CheckReport, CodeCheck, extract_code, inputs_from_tests, run_checks
from orchestra.sandbox.sandbox import Sandbox
from orchestra.sync import run_sync

CODE_PROMPT = """Write {language} code for this task.

Task: {description}

Answer with the complete code in one fenced ```{language} block, without tests or example usage."""

TESTS_PROMPT = """Write unit tests for {language} code that does this task.

Task: {description}

Answer with one fenced ```python block holding only import lines and `assert` statements (one per
line) that call the functions named in the task. Cover typical cases and edge cases."""

REVIEW_PROMPT = """Review this {language} code. List its bugs, risks and concrete improvements, the
most important first.

```{language}
{code}
```"""

EXECUTABLE = ("python",)
"""Languages whose code the sandbox can run."""


@dataclass(frozen=True)
class CodeResult:
    """Generated code, its tests, how it fared against them, and the metadata of every request."""

    code: str
    language: str
    tests: list[str]
    test_report: CheckReport | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def pass_fraction(self) -> float | None:
        return None if self.test_report is None or not self.tests else self.test_report.pass_fraction

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReviewResult:
    review: str
    metadata: dict[str, Any] = field(default_factory=dict)


def asserts_from_answer(text: str) -> list[str]:
    """`assert` statements from a model's answer, each a test with the answer's imports before it."""
    code = extract_code(text)
    try:
        statements = ast.parse(code).body
    except SyntaxError:  # keep the lines that parse on their own
        statements = []
        for line in code.splitlines():
            try:
                statements += ast.parse(line.strip()).body
            except SyntaxError:
                continue
    imports = [ast.unparse(s) for s in statements if isinstance(s, ast.Import | ast.ImportFrom)]
    prelude = "".join(line + "\n" for line in imports)
    return [prelude + ast.unparse(s) for s in statements if isinstance(s, ast.Assert)]


class CodeGenerationApp:
    """Code and tests from the configured providers, checked in a sandbox."""

    def __init__(
        self,
        orchestra: Orchestra,
        *,
        sandbox: Sandbox | None = None,
        user_id: str = "code-app",
        task_type: str = "code",
        tests_task_type: str = "code_tests",
        review_task_type: str = "code_review",
        per_test_timeout_s: float = 2.0,
    ) -> None:
        self.orchestra = orchestra
        self.sandbox = sandbox or Sandbox()
        self.user_id = user_id
        self.task_type = task_type
        self.tests_task_type = tests_task_type
        self.review_task_type = review_task_type
        self.per_test_timeout_s = per_test_timeout_s

    async def generate_code(
        self,
        description: str,
        language: str = "python",
        include_tests: bool = True,
        *,
        tests: Sequence[str] | None = None,
        complexity: str | None = None,
    ) -> CodeResult:
        """Code for `description`; with `include_tests`, tests too (written by a separate request
        unless `tests` are given), and the code is checked against them (Python only)."""
        if not isinstance(description, str) or not description.strip():
            raise InvalidRequest("description must be a non-empty string")
        language = language.strip().lower()
        metadata: dict[str, Any] = {}
        chosen_tests = list(tests or [])
        if include_tests and not chosen_tests:
            answer = await self.orchestra.process_request(
                TESTS_PROMPT.format(language=language, description=description),
                task_type=self.tests_task_type,
                user_id=self.user_id,
                complexity_override=complexity,
                tags={"app": "code_generation", "step": "tests", "language": language},
            )
            metadata["tests"] = answer.metadata.as_dict()
            chosen_tests = asserts_from_answer(answer.response)
        check = CodeCheck(
            tests=tuple(chosen_tests),
            inputs=tuple(inputs_from_tests(chosen_tests)),
            per_test_timeout_s=self.per_test_timeout_s,
        )
        answer = await self.orchestra.process_request(
            CODE_PROMPT.format(language=language, description=description),
            task_type=self.task_type,
            user_id=self.user_id,
            complexity_override=complexity,
            tags={"app": "code_generation", "step": "code", "language": language},
            execution=check,
        )
        metadata["code"] = answer.metadata.as_dict()
        code = extract_code(answer.response, language)
        report = None
        if chosen_tests and language in EXECUTABLE:
            report = (await run_checks(self.sandbox, [code], check))[0]
        return CodeResult(
            code=code, language=language, tests=chosen_tests, test_report=report, metadata=metadata
        )

    async def review_code(self, code: str, language: str = "python") -> ReviewResult:
        """A review of `code` (with consensus when the `code_review` rule asks for it)."""
        if not isinstance(code, str) or not code.strip():
            raise InvalidRequest("code must be a non-empty string")
        answer = await self.orchestra.process_request(
            REVIEW_PROMPT.format(language=language, code=code.strip()),
            task_type=self.review_task_type,
            user_id=self.user_id,
            tags={"app": "code_generation", "step": "review", "language": language},
        )
        return ReviewResult(review=answer.response, metadata=answer.metadata.as_dict())

    def generate_code_sync(self, description: str, **options: Any) -> CodeResult:
        """`generate_code` for scripts and notebooks."""
        return run_sync(self.generate_code(description, **options))
