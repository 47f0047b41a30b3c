"""Time a full A/B report over 1,000,000 logged rows, against the implementation it replaced.

Three arms on the same 333,334 prompts (a paired design), four metrics: a quality score
(paired t), success (McNemar), cost per successful request (a ratio, paired delta method) and
p95 latency (order-statistic intervals), Holm-adjusted together. The rows are written to a
parquet file shaped like the request table first; the timing covers reading it and the report.

The baseline is the same benchmark run in a subprocess on the `orchestra` package of an earlier
commit (`--baseline-ref`, default cde5d0b: the report before its per-unit means moved from a
polars group-by and string sort to integer unit codes and numpy bincounts), taken from git with
`git archive`; it is skipped with a note when git or that commit is unavailable.

    .venv/bin/python benchmarks/ab_report_speed.py [--rows 1000000] [--baseline-ref cde5d0b]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def synthetic(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    units = rows // 3 + 1
    prompts = np.array([f"prompt-{i:07d}" for i in range(units)])
    difficulty = rng.random(units)
    frames = []
    for arm, (lift, cost_scale, latency_scale) in {
        "baseline": (0.00, 1.0, 1.0),
        "consensus": (0.03, 3.0, 1.2),
        "cheap": (-0.02, 0.1, 0.6),
    }.items():
        win = rng.random(units) < np.clip(0.2 + lift + 0.3 * (difficulty - 0.5), 0, 1)
        draw = rng.random(units) < 0.02
        frames.append(
            pl.DataFrame(
                {
                    "run_name": arm,
                    "prompt": prompts,
                    "quality": np.where(draw, 0.5, win.astype(float)),
                    "status": np.where(rng.random(units) < 0.985, "ok", "error"),
                    "cost_usd": rng.lognormal(np.log(0.002 * cost_scale), 0.5, units),
                    "latency_ms": rng.lognormal(np.log(1500 * latency_scale), 0.6, units),
                }
            )
        )
    return pl.concat(frames).head(rows)


def time_reports(path: Path, repeats: int = 3) -> tuple[list[float], object, pl.DataFrame]:
    from orchestra.analysis import ab

    timings, report, frame = [], None, None
    for _ in range(repeats):
        started = time.perf_counter()
        frame = pl.read_parquet(path)
        report = ab.ab_report(frame, arm="run_name", unit="prompt", control="baseline", correction="holm")
        timings.append(time.perf_counter() - started)
    return timings, report, frame


def baseline(path: Path, ref: str) -> float | None:
    """min seconds of the same timing on the `orchestra` package at git `ref` (None if unavailable)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "orchestra"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"baseline skipped: cannot read {ref} from git ({err})")
        return None
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        env = {**os.environ, "PYTHONPATH": folder, "MLFLOW_DISABLE_TELEMETRY": "true"}
        done = subprocess.run(
            [sys.executable, __file__, "--only-time", str(path)], env=env, capture_output=True, text=True
        )
    if done.returncode != 0:
        print(f"baseline failed:\n{done.stderr[-2000:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-ref", default="cde5d0b")
    parser.add_argument("--only-time", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_time:  # the baseline subprocess: print the best time only
        print(min(time_reports(args.only_time)[0]))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "requests.parquet"
        synthetic(args.rows).write_parquet(path)
        timings, report, frame = time_reports(path)
        before = baseline(path, args.baseline_ref) if args.baseline_ref else None
    print(f"{frame.height:,} rows, {frame['run_name'].n_unique()} arms, {len(report)} comparisons")
    for result in report:
        print("  " + result.verdict)
    for note in report.notes:
        print("  " + note)
    print(f"seconds per full report (read + analyse), 3 runs: {', '.join(f'{t:.2f}' for t in timings)}")
    print(f"RESULT ab_report_1m_rows_s {min(timings):.2f}")
    if before is not None:
        print(f"RESULT ab_report_1m_rows_baseline_s {before:.2f}")
        print(f"RESULT ab_report_1m_rows_speedup {before / min(timings):.1f}")


if __name__ == "__main__":
    main()
