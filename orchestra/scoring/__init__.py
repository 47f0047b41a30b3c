"""Scorers: execution-checked verdicts on generated code (HumanEval-style problems)."""

from orchestra.scoring.humaneval import (
    Verdict,
    check_completion,
    check_completions,
    code_passes_tests,
    load_problems,
)

__all__ = ["Verdict", "check_completion", "check_completions", "code_passes_tests", "load_problems"]
