"""How long orchestra takes to start: `import orchestra`, `Orchestra.from_config` on the shipped config,
and a warm 3-answer similarity consensus.

    .venv/bin/python benchmarks/startup.py [--repeats 7] [--prompts 30] [--baseline ../main]
                                           [--no-consensus]

- import: `import orchestra` in a fresh interpreter, the median of `--repeats` (alternating with
  the same from `--baseline`, another checkout, for a before/after in one run); the same for
  `from orchestra import Orchestra` (orchestra's names load on first use, so this is what a
  script pays before building one: `RESULT orchestra_class_import_ms`); then one
  `python -X importtime -c "import orchestra"` and the packages that cost most (cumulative time
  of each top-level package imported while importing orchestra, as first imported);
- from_config: in a fresh interpreter that has imported orchestra, `Orchestra.from_config` on a
  copy of the shipped `config.yaml` and `mlflow.yaml` in a temporary folder (so the SQLite store
  is created there), the median of `--repeats` processes (alternating with `--baseline`'s);
- consensus: `benchmarks/consensus_speed.py`'s timing on AlpacaEval answers of the three strong
  models, default embedding backend (`auto`, see `orchestra/consensus/embeddings.py`), warm model:
  `warm` is three new answers embedded together plus the medoid, `after_last_answer` is what is
  left once the first two are embedded (`consensus_backends.py` compares the backends).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (.+)$")


def python(
    code: str, *flags: str, cwd: Path | None = None, path: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    return subprocess.run(  # `-c` puts the working directory first on sys.path: run in `path`
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd or path,
        env=env,
    )


def import_ms(path: Path = ROOT, statement: str = "import orchestra") -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(python(code, path=path).stdout.strip().splitlines()[-1]) * 1000


ORCHESTRA_CLASS = "from orchestra import Orchestra"
"""What a script pays before it can build an `Orchestra`: since `import orchestra` loads its names
on first use, `import orchestra` alone no longer says that."""


def import_offenders(top: int) -> list[tuple[str, float]]:
    """The modules whose import (with what they import first) costs most while importing orchestra:
    one `-X importtime` run, cumulative ms, nested entries indented as Python prints them."""
    stderr = python(ORCHESTRA_CLASS, "-X", "importtime").stderr
    entries = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match is not None and match[3].strip() != "orchestra":
            entries.append((match[3].rstrip(), int(match[2]) / 1000))
    return sorted(entries, key=lambda entry: -entry[1])[:top]


def shipped_config(folder: Path) -> Path:
    """`config.yaml` and `mlflow.yaml` copied into `folder`, with the data paths made absolute."""
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for dataset in raw["datasets"].values():
        dataset["path"] = str(ROOT / dataset["path"])
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    shutil.copy(ROOT / "mlflow.yaml", folder / "mlflow.yaml")
    return path


def from_config_ms(path: Path = ROOT) -> float:
    with tempfile.TemporaryDirectory(prefix="orchestra-startup-") as folder:
        config = shipped_config(Path(folder))
        code = (
            "import time; from orchestra import Orchestra; t = time.perf_counter(); "
            f"orch = Orchestra.from_config({str(config)!r}); print(time.perf_counter() - t); orch.close()"
        )
        return float(python(code, cwd=Path(folder), path=path).stdout.strip().splitlines()[0]) * 1000


def consensus_ms(prompts: int) -> dict[str, float]:
    import polars as pl
    from alpaca import DATA
    from consensus_speed import timings

    from orchestra.consensus.embeddings import resolve_backend

    table = pl.read_parquet(DATA).pivot(
        on="model", index="instruction", values="output", aggregate_function="first"
    )
    rows = list(table.iter_rows(named=True))[:prompts]
    backend = resolve_backend("auto")
    with tempfile.TemporaryDirectory() as folder:
        speed = asyncio.run(timings(backend, rows, Path(folder)))
    return {"backend": backend, **speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompts", type=int, default=30, help="prompts timed for consensus")
    parser.add_argument("--top", type=int, default=20, help="import offenders listed")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. of main) to time imports and from_config of"
    )
    parser.add_argument(
        "--no-consensus", dest="consensus", action="store_false", help="skip the consensus timing"
    )
    args = parser.parse_args()
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    imports, baseline, classes, baseline_classes = [], [], [], []
    for _ in range(args.repeats):  # alternating with the baseline checkout, if one is given
        imports.append(import_ms())
        classes.append(import_ms(statement=ORCHESTRA_CLASS))
        if args.baseline is not None:
            baseline.append(import_ms(args.baseline))
            baseline_classes.append(import_ms(args.baseline, ORCHESTRA_CLASS))
    configs, baseline_configs = [], []
    for _ in range(args.repeats):
        configs.append(from_config_ms())
        if args.baseline is not None:
            baseline_configs.append(from_config_ms(args.baseline))
    offenders = import_offenders(args.top)
    consensus = consensus_ms(args.prompts) if args.consensus else None
    print(
        f"import orchestra: median {statistics.median(imports):.0f} ms of {sorted(round(t) for t in imports)}"
    )
    if baseline:
        print(
            f"import orchestra from {args.baseline}: median {statistics.median(baseline):.0f} ms "
            f"of {sorted(round(t) for t in baseline)}"
        )
    print(
        f"{ORCHESTRA_CLASS}: median {statistics.median(classes):.0f} ms "
        f"of {sorted(round(t) for t in classes)}"
    )
    if baseline_classes:
        print(
            f"{ORCHESTRA_CLASS} from {args.baseline}: median {statistics.median(baseline_classes):.0f} ms "
            f"of {sorted(round(t) for t in baseline_classes)}"
        )
    print("  modules that cost most (cumulative ms, one -X importtime run, nesting as printed):")
    for name, ms in offenders:
        print(f"    {ms:8.1f}  {name}")
    print(
        f"Orchestra.from_config(config.yaml): median {statistics.median(configs):.0f} ms "
        f"of {sorted(round(t) for t in configs)}"
    )
    if baseline_configs:
        print(
            f"Orchestra.from_config(config.yaml) from {args.baseline}: median "
            f"{statistics.median(baseline_configs):.0f} ms of {sorted(round(t) for t in baseline_configs)}"
        )
    if consensus is not None:
        print(
            f"similarity consensus ({consensus['backend']}, {args.prompts} prompts): "
            f"warm {consensus['full']:.1f} ms, after the last answer {consensus['pipelined']:.1f} ms, "
            f"cached {consensus['cached']:.2f} ms"
        )
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"RESULT import_ms {statistics.median(imports):.0f}")
    if baseline:
        print(f"RESULT import_ms_baseline {statistics.median(baseline):.0f}")
    print(f"RESULT orchestra_class_import_ms {statistics.median(classes):.0f}")
    if baseline_classes:
        print(f"RESULT orchestra_class_import_ms_baseline {statistics.median(baseline_classes):.0f}")
    print(f"RESULT from_config_ms {statistics.median(configs):.0f}")
    if baseline_configs:
        print(f"RESULT from_config_ms_baseline {statistics.median(baseline_configs):.0f}")
    if consensus is not None:
        print(f"RESULT similarity_consensus_warm_ms {consensus['full']:.1f}")
        print(f"RESULT similarity_consensus_after_last_answer_ms {consensus['pipelined']:.1f}")


if __name__ == "__main__":
    main()
