"""Time a full A/B report over 1,000,000 logged rows.

Three arms on the same 333,334 prompts (a paired design), four metrics: a quality score
(paired t), success (McNemar), cost per successful request (a ratio, paired delta method) and
p95 latency (order-statistic intervals), Holm-adjusted together. The rows are written to a
parquet file shaped like the request table first; the timing covers reading it and the report.

    .venv/bin/python benchmarks/ab_report_speed.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from orchestra.analysis import ab


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "requests.parquet"
        synthetic(args.rows).write_parquet(path)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            frame = pl.read_parquet(path)
            report = ab.ab_report(frame, arm="run_name", unit="prompt", control="baseline", correction="holm")
            timings.append(time.perf_counter() - started)
    print(f"{frame.height:,} rows, {frame['run_name'].n_unique()} arms, {len(report)} comparisons")
    for result in report:
        print("  " + result.verdict)
    for note in report.notes:
        print("  " + note)
    print(f"seconds per full report (read + analyse), 3 runs: {', '.join(f'{t:.2f}' for t in timings)}")
    print(f"RESULT ab_report_1m_rows_s {min(timings):.2f}")


if __name__ == "__main__":
    main()
