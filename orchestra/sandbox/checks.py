"""Checking candidate code in the sandbox: which tests it passes, what it returns on given inputs.

check = CodeCheck(tests=["assert add(2, 3) == 5"], inputs=["add(2, 3)"])
reports = await run_checks(Sandbox(), ["def add(a, b):\n    return a + b\n"], check)
reports[0].passed, reports[0].outputs      # [True], ["5"]

Each candidate runs in its own sandboxed process: the candidate's code is executed as a module
(named `__candidate__`, so `if __name__ == "__main__":` demo blocks do not run), then each test
in a fresh copy of its namespace, then each input expression. Every test and input has its own
time limit (`per_test_timeout_s`, a SIGALRM timer as in the HumanEval harness), so one that hangs
fails alone. Results are written (as Python literals: importing json would cost more start-up time than
the rest) as they come on a copy of stdout taken before the candidate
runs, each line prefixed with a random token; the candidate's own prints go to stderr. A test
not reported (the process was killed, or exited early) counts as failed.

These reports are about correctness, not security: code that runs in the same process as the
checks can, on purpose, tamper with them (as with the official HumanEval harness). The sandbox
protects the caller, not the verdict, from adversarial code.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestra.sandbox.limits import Outcome, SandboxLimits
from orchestra.sandbox.sandbox import Sandbox

OUTPUT_CHARS = 500
"""Outputs are compared by `repr`, cut to this many characters."""

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)

_HARNESS = r"""
import os as _os, signal as _signal

_channel = _os.fdopen(_os.dup(1), "w", encoding="utf-8")
_os.dup2(2, 1)
_TOKEN, _PAYLOAD = {token!r}, {payload!r}


class _TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _TestTimeout("timed out")


def _report(kind, index, value):
    _channel.write(_TOKEN + repr((kind, index, value)) + "\n")
    _channel.flush()


def _error(err):
    return (type(err).__name__ + ": " + str(err))[:300]


def _limited(run):
    _signal.signal(_signal.SIGALRM, _alarm)
    _signal.setitimer(_signal.ITIMER_REAL, _PAYLOAD["timeout"])
    try:
        return run()
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)


_namespace = {{"__name__": "__candidate__", "__builtins__": __builtins__}}
try:
    _limited(lambda: exec(compile(_PAYLOAD["code"], "candidate.py", "exec"), _namespace))
    _report("load", 0, None)
except BaseException as _err:
    _report("load", 0, _error(_err))
_entry = _PAYLOAD["entry_point"]
for _index, _test in enumerate(_PAYLOAD["tests"]):
    _env = dict(_namespace)
    if _entry:
        _env["candidate"] = _namespace.get(_entry)
    try:
        _limited(lambda: exec(compile(_test, "test_%d.py" % _index, "exec"), _env))
        _report("test", _index, None)
    except BaseException as _err:
        _report("test", _index, _error(_err))
for _index, _expression in enumerate(_PAYLOAD["inputs"]):
    _env = dict(_namespace)
    if _entry:
        _env["candidate"] = _namespace.get(_entry)
    try:
        _value = _limited(lambda: eval(_expression, _env))
        _report("output", _index, repr(_value)[:{output_chars}])
    except BaseException as _err:
        _report("output", _index, "!" + type(_err).__name__)
_report("done", 0, None)
"""


@dataclass(frozen=True)
class CodeCheck:
    """What to check candidates against: `tests` (snippets that raise when they fail), `inputs`
    (expressions whose values are compared across candidates), code put before each candidate
    (`prefix`, e.g. a HumanEval prompt when candidates are function bodies) and the function that
    `candidate` names in tests and inputs (`entry_point`)."""

    tests: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    prefix: str = ""
    entry_point: str | None = None
    per_test_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tests", tuple(self.tests))
        object.__setattr__(self, "inputs", tuple(self.inputs))


@dataclass(frozen=True)
class CheckReport:
    """One candidate's run: did it load, which tests passed, its outputs on the inputs."""

    loaded: bool
    passed: list[bool]
    outputs: list[str | None]
    outcome: Outcome
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def pass_fraction(self) -> float:
        """Share of tests passed; without tests, 1.0 when the code ran to the end without error."""
        if not self.passed:
            return 1.0 if self.loaded and self.outcome == Outcome.OK else 0.0
        return sum(self.passed) / len(self.passed)


def extract_code(text: str, language: str = "python") -> str:
    """The code in a model's answer: its fenced blocks in `language` (or unlabelled) joined, else
    the whole text."""
    blocks = [
        body
        for label, body in _FENCE.findall(text)
        if label.lower() in ("", language.lower(), {"python": "py"}.get(language.lower(), language.lower()))
    ]
    return "\n".join(block.rstrip() for block in blocks) + "\n" if blocks else text


def asserts_in(text: str) -> list[str]:
    """Top-level `assert` statements of the Python code blocks in `text` (a prompt), one per test."""
    tests: list[str] = []
    for label, body in _FENCE.findall(text):
        if label.lower() not in ("", "python", "py"):
            continue
        try:
            tree = ast.parse(body)
        except SyntaxError:
            continue
        tests += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Assert)]
    return tests


def inputs_from_tests(tests: Sequence[str], limit: int = 32) -> list[str]:
    """Call expressions that tests compare with `==` (`assert f(2) == 4` gives `f(2)`), for
    comparing candidates' outputs on the same inputs."""
    found: dict[str, None] = {}
    for test in tests:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assert)
                and isinstance(node.test, ast.Compare)
                and len(node.test.ops) == 1
                and isinstance(node.test.ops[0], ast.Eq)
            ):
                for side in (node.test.left, node.test.comparators[0]):
                    if isinstance(side, ast.Call):
                        found[ast.unparse(side)] = None
    return list(found)[:limit]


def check_program(code: str, check: CodeCheck, token: str) -> str:
    """The program that runs `code` against `check` and reports on lines starting with `token`."""
    payload = {
        "code": check.prefix + code,
        "tests": list(check.tests),
        "inputs": list(check.inputs),
        "entry_point": check.entry_point,
        "timeout": check.per_test_timeout_s,
    }
    return _HARNESS.format(token=token, payload=payload, output_chars=OUTPUT_CHARS)


def parse_report(stdout: str, token: str, check: CodeCheck, outcome: Outcome) -> CheckReport:
    passed = [False] * len(check.tests)
    outputs: list[str | None] = [None] * len(check.inputs)
    errors: dict[str, str] = {}
    loaded = False
    for line in stdout.splitlines():
        if not line.startswith(token):
            continue
        try:
            kind, index, value = ast.literal_eval(line[len(token) :])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if kind == "load":
            loaded = value is None
            if value is not None:
                errors["load"] = value
        elif kind == "test" and 0 <= index < len(passed):
            passed[index] = value is None
            if value is not None:
                errors[f"test {index}"] = value
        elif kind == "output" and 0 <= index < len(outputs):
            outputs[index] = value
    return CheckReport(loaded=loaded, passed=passed, outputs=outputs, outcome=outcome, errors=errors)


async def run_checks(
    sandbox: Sandbox,
    codes: Sequence[str],
    check: CodeCheck,
    *,
    limits: SandboxLimits | None = None,
    concurrency: int | None = None,
) -> list[CheckReport]:
    """Run each candidate against `check` in its own sandboxed process (in parallel)."""
    gate = asyncio.Semaphore(concurrency or os.cpu_count() or 1)

    async def one(code: str) -> CheckReport:
        token = secrets.token_hex(16)
        async with gate:
            result = await sandbox.run(check_program(code, check, token), limits=limits)
        report = parse_report(result.stdout, token, check, result.outcome)
        if result.outcome != Outcome.OK:
            report.errors["sandbox"] = result.outcome.value
        return report

    return list(await asyncio.gather(*(one(code) for code in codes)))
