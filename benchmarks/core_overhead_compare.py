"""`core_overhead.py` on two versions of orchestra in one run: a base revision and this tree.

The base is exported with `git archive` into a temporary folder (nothing of it is kept), then
both run the same benchmark script (this tree's) in turn, in separate processes, alternating
for `--rounds` rounds so that a change in the machine's load falls on both. Reported: the median
over rounds of each RESULT of core_overhead.py, for each version, their ratio, and the median of
the ratios within a round (the steadier figure on a shared machine).

    .venv/bin/python benchmarks/core_overhead_compare.py --base c1d21ef [--rounds 7]
        [--requests 2000] [--sweep 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "core_overhead.py"


def export(revision: str, folder: Path) -> Path:
    """The `orchestra` package of `revision`, exported into `folder`."""
    archive = subprocess.run(
        ["git", "archive", revision, "orchestra"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_once(tree: Path, requests: int, sweep: int) -> dict[str, float]:
    """The RESULT lines of one run of core_overhead.py with `tree`'s orchestra imported."""
    environment = {**os.environ, "PYTHONPATH": str(tree), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--requests", str(requests), "--sweep", str(sweep)],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"core_overhead.py failed on {tree}:\n{done.stderr[-3000:]}")
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, value = line.split()
            results[name] = float(value)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--sweep", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestra-base-") as folder:
        trees = {"base": export(args.base, Path(folder)), "head": ROOT}
        runs: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
        for round_ in range(args.rounds):
            order = ["base", "head"] if round_ % 2 == 0 else ["head", "base"]
            for version in order:
                runs[version].append(run_once(trees[version], args.requests, args.sweep))
                print(f"round {round_ + 1} {version}: {runs[version][-1]}", flush=True)
    names = sorted(runs["head"][0])
    for name in names:
        base = statistics.median(r[name] for r in runs["base"])
        head = statistics.median(r[name] for r in runs["head"])
        print(f"RESULT base_{name} {base:g}")
        print(f"RESULT head_{name} {head:g}")
        if base:
            print(f"RESULT head_over_base_{name} {head / base:.3f}")
        # the two runs of a round share the machine's load: their ratio, median over rounds
        paired = [h[name] / b[name] for h, b in zip(runs["head"], runs["base"], strict=True) if b[name]]
        if paired:
            print(f"RESULT head_over_base_paired_{name} {statistics.median(paired):.3f}")


if __name__ == "__main__":
    main()
