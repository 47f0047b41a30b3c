"""How fast is a 3-response similarity consensus, and do the faster embeddings agree with float32?

On AlpacaEval answers of GPT-4, Claude 2.1 and Gemini Pro (truncated to 256 tokens, as the model
does), for each backend (torch float32, torch bfloat16, ONNX Runtime float32 and int8; the
candidates that are not backends, thread settings and the time per token are in
`consensus_backends.py`):

- load: a fresh process until the first vector, for torch (importing torch and
  sentence-transformers, loading the model) and for `auto` (whichever backend it resolves to;
  for ONNX, from the export cached on disk, made first if missing);
- full: three new answers arriving together, embedded in one batch, then the medoid;
- pipelined: the answers arrive one after another (as parallel calls do): the first two are
  embedded while the last is awaited, so after the last answer only it is left to embed;
- cached: the same three answers again (a re-run sweep or notebook);
- agreement with float32 over all 403 prompts: cosine of the vectors, and how often the
  consensus picks the same answer (among the 3 strong models, and among all 7).

    .venv/bin/python benchmarks/consensus_speed.py [--prompts 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from alpaca import ALL, DATA, STRONG

from orchestra.consensus import EmbeddingSpec, SimilarityConsensus
from orchestra.consensus.embeddings import load_embedder, resolve_backend
from orchestra.types import ModelResponse

BACKENDS = ["torch", "torch-bf16", "onnx-fp32", "onnx-int8"]


def load_time(backend: str) -> float:
    code = (
        "import time; t = time.perf_counter(); "
        "from orchestra.consensus.embeddings import load_embedder, EmbeddingSpec; "
        f"load_embedder(EmbeddingSpec(backend={backend!r})).embed(['warm']); print(time.perf_counter() - t)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


def responses(row: dict, models: list[str]) -> list[ModelResponse]:
    return [ModelResponse(content=row[m], provider=m, model_name=m) for m in models]


async def timings(backend: str, rows: list[dict], folder: Path) -> dict[str, float]:
    strategy = SimilarityConsensus(EmbeddingSpec(backend=backend), cache_path=folder / f"{backend}.sqlite")
    strategy.embedder().embed(["warm up"])  # a warm model
    full, pipelined, cached = [], [], []
    for index, row in enumerate(rows):
        answers = responses(row, STRONG)
        if index % 2 == 0:
            started = time.perf_counter()
            await strategy.find_consensus(answers, {})
            full.append(time.perf_counter() - started)
        else:
            for early in answers[:2]:
                strategy.prepare(early)
            await asyncio.get_running_loop().run_in_executor(strategy._worker, lambda: None)  # both embedded
            started = time.perf_counter()
            await strategy.find_consensus(answers, {})
            pipelined.append(time.perf_counter() - started)
        started = time.perf_counter()
        await strategy.find_consensus(answers, {})
        cached.append(time.perf_counter() - started)
    return {
        name: statistics.median(values) * 1000
        for name, values in (("full", full), ("pipelined", pipelined), ("cached", cached))
    }


def medoid(vectors: np.ndarray) -> int:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    return int(np.argmax(np.round(similarity.sum(axis=1) / (len(vectors) - 1), 9)))


def agreement(rows: list[dict]) -> dict[str, dict[str, float]]:
    vectors = {
        b: [load_embedder(EmbeddingSpec(backend=b)).embed([r[m] for m in ALL]) for r in rows]
        for b in BACKENDS
    }
    reference = vectors["torch"]
    result = {}
    for backend in BACKENDS[1:]:
        cosine = np.concatenate(
            [(a * b).sum(axis=1) for a, b in zip(vectors[backend], reference, strict=True)]
        )
        result[backend] = {
            "cos_min": float(cosine.min()),
            "cos_mean": float(cosine.mean()),
            "cos_share_099": float((cosine >= 0.99).mean()),
            "same_pick_3": float(
                np.mean(
                    [medoid(a[:3]) == medoid(b[:3]) for a, b in zip(vectors[backend], reference, strict=True)]
                )
            ),
            "same_pick_7": float(
                np.mean([medoid(a) == medoid(b) for a, b in zip(vectors[backend], reference, strict=True)])
            ),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=60, help="prompts timed per backend")
    args = parser.parse_args()
    table = pl.read_parquet(DATA).pivot(
        on="model", index="instruction", values="output", aggregate_function="first"
    )
    rows = list(table.iter_rows(named=True))
    load_embedder(EmbeddingSpec(backend="auto")).embed(["export first, if missing"])
    load_s, load_auto_s = load_time("torch"), load_time("auto")
    speed = {}
    with tempfile.TemporaryDirectory() as folder:
        for backend in BACKENDS:
            speed[backend] = asyncio.run(timings(backend, rows[: args.prompts], Path(folder)))
    agree = agreement(rows)
    default = resolve_backend("auto")
    print(f"model load (import torch + sentence-transformers, load MiniLM): {load_s:.2f} s")
    print(f"model load, auto ({resolve_backend('auto')}, export on disk): {load_auto_s:.2f} s")
    print(f"{'backend':<12} {'full ms':>9} {'pipelined ms':>13} {'cached ms':>10}   agreement with float32")
    for backend in BACKENDS:
        s = speed[backend]
        a = agree.get(backend)
        detail = (
            "reference"
            if a is None
            else f"cos min {a['cos_min']:.4f}, mean {a['cos_mean']:.5f}, >=0.99 {a['cos_share_099']:.1%}; "
            f"same pick {a['same_pick_3']:.1%} (3 models), {a['same_pick_7']:.1%} (7)"
        )
        print(f"{backend:<12} {s['full']:>9.1f} {s['pipelined']:>13.1f} {s['cached']:>10.2f}   {detail}")
    print(f"default backend here: {default} (auto)")
    print(f"RESULT model_load_s {load_s:.2f}")
    print(f"RESULT model_load_auto_s {load_auto_s:.2f}")
    print(f"RESULT similarity_consensus_warm_ms {speed[default]['full']:.1f}")
    print(f"RESULT similarity_consensus_after_last_answer_ms {speed[default]['pipelined']:.1f}")
    print(f"RESULT similarity_consensus_cached_ms {speed[default]['cached']:.2f}")


if __name__ == "__main__":
    main()
