"""mypy on `orchestra/` held to a recorded baseline that can only shrink (`make lint`).

    .venv/bin/python scripts/mypy_baseline.py            # fails when a file has more errors than recorded
    .venv/bin/python scripts/mypy_baseline.py --update   # records the counts now (refused if one grew)

The baseline (`scripts/mypy_baseline.json`) is the number of mypy errors (default mode, with the
settings in pyproject.toml) per file. A file not in it may have none; `orchestra/engine/`,
`providers/`, `routing/` and `consensus/` may have none at all. When a file gets better, the
check says so and `--update` records the smaller count.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scripts" / "mypy_baseline.json"
CLEAN = ("orchestra/engine/", "orchestra/providers/", "orchestra/routing/", "orchestra/consensus/")
"""Folders that must stay free of mypy errors."""
_ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+: error: ")


def current_errors() -> tuple[Counter[str], list[str]]:
    """Errors per file, and the error lines, from one mypy run over `orchestra/`."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "orchestra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        raise SystemExit(f"mypy failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if _ERROR.match(line)]
    return Counter(_ERROR.match(line)["path"] for line in lines), lines  # type: ignore[index]


def compare(baseline: dict[str, int], now: Counter[str]) -> tuple[list[str], list[str]]:
    """(what got worse, what got better) than the baseline."""
    worse, better = [], []
    for path in sorted(set(baseline) | set(now)):
        allowed = 0 if path.startswith(CLEAN) else baseline.get(path, 0)
        if now[path] > allowed:
            worse.append(f"{path}: {now[path]} error(s), {allowed} allowed")
        elif now[path] < baseline.get(path, 0):
            better.append(f"{path}: {now[path]} error(s), {baseline[path]} recorded")
    return worse, better


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="record the current counts (only if none grew)")
    args = parser.parse_args(argv)
    baseline: dict[str, int] = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    now, lines = current_errors()
    worse, better = compare(baseline, now)
    total = sum(now.values())
    if args.update and not BASELINE.exists():  # the first record
        worse = []
    if worse:
        print("\n".join(line for line in lines if any(line.startswith(w.split(":")[0]) for w in worse)))
        print(f"\nmypy: more errors than the baseline allows ({total} in all):\n  " + "\n  ".join(worse))
        return 1
    if args.update:
        BASELINE.write_text(json.dumps(dict(sorted(now.items())), indent=1) + "\n")
        print(f"mypy baseline recorded: {total} error(s) in {len(now)} file(s)")
        return 0
    print(f"mypy: {total} error(s) in {len(now)} file(s), none above the baseline ({sum(baseline.values())})")
    if better:
        print("fewer than recorded (run with --update to lock it in):\n  " + "\n  ".join(better))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
