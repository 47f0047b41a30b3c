"""Routing for code on the recorded HumanEval pass matrix, and the sandbox's overhead per run.

1. Per-task oracle vs best single model vs a learned router (trained on half the tasks, tested on
   the other half), with 95% intervals, for HumanEval and HumanEval+ labels; then the learned
   router's margin over 100 random splits (see `orchestra.applications.code_routing`).
2. Sandbox overhead: a trivial program (`pass`) through `Sandbox.run` vs a bare
   `subprocess.run([python, "-c", "pass"])` of the same interpreter, and vs the same with the
   sandbox's interpreter flags (`-S -s -B -P`, no site import), alternated, median of each.
   `sandbox_overhead_ms` is the difference from the latter (what the sandbox adds).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/code_routing.py
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time

import pandas as pd

from orchestra.applications.code_routing import evaluate_code_routing, load_pass_matrix, repeated_splits
from orchestra.sandbox import Sandbox
from orchestra.scoring import load_problems

RUNS = 40


def routing() -> None:
    matrix, problems = load_pass_matrix(), load_problems()
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        for label in ("passed_base", "passed_plus"):
            evaluation = evaluate_code_routing(matrix, problems, label=label, seed=0)
            print(f"\n{label}: train {len(evaluation.train_tasks)} tasks, test {len(evaluation.test_tasks)}")
            print(evaluation.table.to_string(index=False))
            picks = evaluation.learned_choices.value_counts().to_dict()
            print("learned router's picks on the test half:", picks)
            short = "base" if label == "passed_base" else "plus"
            for policy, key in (("oracle", "oracle"), ("best single", "best_single"), ("learned", "learned")):
                row = evaluation.table[evaluation.table["policy"].str.startswith(policy)].iloc[0]
                print(f"RESULT code_routing_{short}_{key}_pass_rate {row.pass_rate:.4f}")
                print(f"RESULT code_routing_{short}_{key}_ci_low {row.ci_low:.4f}")
                print(f"RESULT code_routing_{short}_{key}_ci_high {row.ci_high:.4f}")
                if key != "best_single":
                    print(f"RESULT code_routing_{short}_{key}_minus_best_single {row.minus_best_single:.4f}")
                    print(f"RESULT code_routing_{short}_{key}_minus_best_single_ci_low {row.diff_ci_low:.4f}")
                    print(
                        f"RESULT code_routing_{short}_{key}_minus_best_single_ci_high {row.diff_ci_high:.4f}"
                    )
    splits = repeated_splits(matrix, problems, label="passed_base", repeats=100)
    margin = splits["learned_minus_best_single"]
    print(
        f"\n100 random splits (base): learned - best single = {margin.mean():+.4f} on average "
        f"(2.5-97.5%: {margin.quantile(0.025):+.4f} .. {margin.quantile(0.975):+.4f}); "
        f"learned better in {(margin > 0).mean():.0%}, worse in {(margin < 0).mean():.0%} of splits"
    )
    print(f"RESULT code_routing_base_learned_minus_best_single_mean_100_splits {margin.mean():.4f}")


def bare_ms(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return (time.perf_counter() - started) * 1000


async def overhead() -> None:
    sandbox = Sandbox()
    isolation = await sandbox.isolation()
    await sandbox.run("pass")  # warm: the probe and the interpreter's files in the page cache
    plain = [sandbox.python, "-c", "pass"]
    same_flags = [sandbox.python, "-S", "-s", "-B", "-P", "-c", "pass"]
    timings: dict[str, list[float]] = {"plain": [], "same_flags": [], "sandbox": []}
    for _ in range(RUNS):
        timings["plain"].append(bare_ms(plain))
        timings["same_flags"].append(bare_ms(same_flags))
        started = time.perf_counter()
        result = await sandbox.run("pass")
        timings["sandbox"].append((time.perf_counter() - started) * 1000)
        assert result.ok, result
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(f"\nsandbox ({isolation}) vs bare subprocesses, {RUNS} alternated runs each, median ms:")
    print(f"  subprocess.run([python, '-c', 'pass'])                         {median['plain']:6.1f}")
    print(f"  subprocess.run([python, '-S', '-s', '-B', '-P', '-c', 'pass']) {median['same_flags']:6.1f}")
    print(f"  Sandbox().run('pass')                                          {median['sandbox']:6.1f}")
    print(
        "  (the sandbox starts its interpreter with -S -s -B -P: no site import, hence the second baseline)"
    )
    print(f"RESULT bare_subprocess_ms {median['plain']:.1f}")
    print(f"RESULT bare_subprocess_no_site_ms {median['same_flags']:.1f}")
    print(f"RESULT sandbox_run_ms {median['sandbox']:.1f}")
    print(f"RESULT sandbox_overhead_ms {median['sandbox'] - median['same_flags']:.1f}")
    print(f"RESULT sandbox_minus_bare_subprocess_ms {median['sandbox'] - median['plain']:.1f}")


if __name__ == "__main__":
    routing()
    asyncio.run(overhead())
