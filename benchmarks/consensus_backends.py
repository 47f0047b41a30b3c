"""Which embedding backend should similarity consensus use? Speed and fidelity to float32, one run.

Data: the recorded AlpacaEval answers in `data/alpacaeval` (403 instructions, 7 models). Every
candidate embeds the very same answers in the same process, interleaved (the order rotates per
set), so a change of load on this shared machine hits them all alike.

- warm: three new answers to one instruction (GPT-4, Claude 2.1, Gemini Pro) embedded together
  by a warm model, then the 3x3 cosine and the medoid (`SimilarityConsensus.find_consensus`,
  in-memory cache, first use of these texts); p50 and p95 over `--sets` instructions;
- after last answer: the same three, but the first two were embedded as they arrived
  (`prepare`, as the engine does), so only the last one plus the cosine is left;
- agreement: all answers of `--agreement` instructions embedded by each candidate; for every
  set of 3 answers from 3 different models (35 per instruction), is the medoid the one torch
  float32 picks? Plus the largest cosine deviation (1 - cos) of a vector from float32's;
- where the time goes: tokens per answer (truncated at 256, as the model does), ms per token
  after the last answer, latency by answer length, and the padding a batch of three carries.

Candidates: torch float32 (the reference; `inference_mode`, 2 or 1 intra-op threads), torch
bfloat16 autocast, ONNX Runtime float32 with the transformer fusions (`onnx-fp32`, 1 or 2
threads, texts batched by length or a padded batch), dynamic int8 of only the feed-forward
MatMuls (`onnx_ffn_int8`), dynamic int8 of every MatMul (`onnx-int8`, 1 or 2 threads), and
static int8 (QDQ, MatMuls, calibrated on `--calibration` answers of GPT-4 Turbo, a model that is
not among the seven). ONNX candidates without a suffix run on 1 thread.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/consensus_backends.py [--sets 200] [--agreement 403]

Per-node sensitivity (`--sensitivity`): each group of MatMuls (QKV, attention output, FFN in,
FFN out) quantised alone, measured on the agreement sample: which layers the pick is sensitive to.

Findings (2026-11-30, 2 shared cores of an AMD EPYC with AVX512-BF16/VNNI, load 4-12 from other
work; `--sets 200 --agreement 403 --sensitivity`; ONNX then ran on 2 threads unless `_1t`):
- the answers are long: 60% hit the 256-token cut, a set of three holds 706 tokens (p50); the
  cost is ~0.35-0.43 ms/token in float32 here (36-61 GFLOP/s of the ~21 MFLOP/token of the
  linear layers), so one 256-token answer costs ~70-80 ms and three ~250 ms. 20 ms warm and 8 ms
  after the last answer are out of reach for such answers on 2 cores (8 ms is ~20 tokens of
  float32); they are met only by answers under ~64 tokens (after the last answer: onnx-fp32 on
  1 thread 3.8 ms, torch-bf16 11.6 ms);
- the medoid of three is fragile: torch-bf16 (max 1 - cos 5e-5) changes 0.40% of picks;
  ONNX Runtime float32 (1e-7) 0.01% (one near-tie); every int8 changes far more: dynamic int8
  7.2%, int8 of the FFN only 7.2%, static int8 calibrated on recorded answers 1.7%. Quantising
  any single group alone (sensitivity) changes 0.7% (attention output) to 5.5% (FFN out) of picks,
  so no mixed-precision split keeps 99.5% with a useful speed-up;
- threads: on 2 shared cores, ONNX Runtime on 2 threads was 1.7x slower than on 1 (spinning
  workers against the other processes); torch 2 vs 1 threads about equal;
- batching three answers padded to the longest adds 18% tokens and was slower (345 against
  298 ms warm) than batching by length (one by one for such answers);
- fastest at >= 99.5%: torch-bf16 (141 ms warm, 51 ms after the last answer, p50), then
  onnx-fp32 on 1 thread (235 / 68 ms), torch float32 (256 / 80 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from alpaca import ALL, DATA, STRONG

from orchestra.consensus.embeddings import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    EmbeddingSpec,
    OnnxEmbedder,
    load_embedder,
    model_path,
    resolve_backend,
)
from orchestra.consensus.onnx_export import MODEL_FILES, quantise
from orchestra.consensus.similarity import SimilarityConsensus
from orchestra.types import ModelResponse

CALIBRATION_MODEL = "gpt4_1106_preview"
MAX_TOKENS = 256
LINEAR_MFLOP_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536) / 1e6  # 6 layers, no attention scores


class TorchThreads(Embedder):
    """A torch embedder that sets the intra-op threads of the thread it runs on."""

    def __init__(self, inner: Embedder, threads: int) -> None:
        self.inner, self.threads, self.model_id = inner, threads, f"{inner.model_id}:{threads}t"

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        torch.set_num_threads(self.threads)
        return self.inner.embed(texts)


class PaddedBatch(Embedder):
    """ONNX Runtime on all texts at once, padded to the longest (what batching costs)."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner, self.model_id = inner, f"{inner.model_id}:batched"
        self.tokenizer = inner.tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.inner.session.run(None, feeds)[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@dataclass
class Candidate:
    name: str
    embedder: Embedder
    numbers: str  # candidates with the same numbers share one agreement measurement
    warm: list[float] = field(default_factory=list)
    after_last: list[float] = field(default_factory=list)
    after_last_cpu: list[float] = field(default_factory=list)  # CPU of the whole process


def static_int8(folder: Path, calibration: list[str], tokenizer) -> Path:
    """Static QDQ int8 of every MatMul, activations calibrated (MinMax) on recorded answers."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(tokenizer.encode_batch(calibration))

        def get_next(self) -> dict | None:
            encoding = next(self.items, None)
            if encoding is None:
                return None
            ids = np.array([encoding.ids], dtype=np.int64)
            return {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }

    target = folder / "model.static.onnx"
    quantize_static(
        str(folder / MODEL_FILES["onnx-fp32"]),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT: the fused ops are untyped
    )
    return target


def matmul_groups(model_file: Path) -> dict[str, list[str]]:
    """The fused graph's weight ops by role: QKV (`Attention`), attention output, FFN in, FFN out."""
    import onnx

    roles = {"attention": "attention_output", "intermediate": "ffn_in", "output": "ffn_out"}
    groups: dict[str, list[str]] = {"qkv": [], "attention_output": [], "ffn_in": [], "ffn_out": []}
    for node in onnx.load(str(model_file), load_external_data=False).graph.node:
        if node.op_type == "Attention":
            groups["qkv"].append(node.name)
        elif node.op_type == "MatMul":  # named /transformer/encoder/layer.N/<role>/...
            groups[roles[node.name.split("/")[4]]].append(node.name)
    return groups


def build_candidates(folder: Path, calibration: list[str]) -> list[Candidate]:
    def spec(backend: str, threads: int = 1) -> EmbeddingSpec:
        return EmbeddingSpec(backend=backend, cache_dir=str(folder), threads=threads)

    torch32 = load_embedder(spec("torch"))
    onnx32 = load_embedder(spec("onnx-fp32"))
    assert isinstance(onnx32, OnnxEmbedder)
    path = model_path(spec("torch").model)
    fp32_file = onnx32.model_file
    static_file = static_int8(fp32_file.parent, calibration, onnx32.tokenizer)
    static = OnnxEmbedder(path, spec("onnx-fp32"), model_file=static_file)
    ffn_file = fp32_file.with_name("model.ffn-int8.onnx")
    groups = matmul_groups(fp32_file)
    quantise(fp32_file, ffn_file, groups["ffn_in"] + groups["ffn_out"])
    ffn = OnnxEmbedder(path, spec("onnx-fp32"), model_file=ffn_file)
    return [
        Candidate("torch", TorchThreads(torch32, 2), "torch"),
        Candidate("torch_1t", TorchThreads(torch32, 1), "torch"),
        Candidate("torch_bf16", TorchThreads(load_embedder(spec("torch-bf16")), 2), "torch-bf16"),
        Candidate("onnx_fp32", onnx32, "onnx-fp32"),
        Candidate("onnx_fp32_2t", load_embedder(spec("onnx-fp32", 2)), "onnx-fp32"),
        Candidate("onnx_fp32_batched", PaddedBatch(onnx32), "onnx-fp32"),
        Candidate("onnx_ffn_int8", ffn, "onnx-ffn-int8"),
        Candidate("onnx_int8", load_embedder(spec("onnx-int8")), "onnx-int8"),
        Candidate("onnx_int8_2t", load_embedder(spec("onnx-int8", 2)), "onnx-int8"),
        Candidate("onnx_static_int8", static, "onnx-static-int8"),
    ]


def responses(texts: list[str]) -> list[ModelResponse]:
    return [ModelResponse(content=t, provider=m, model_name=m) for t, m in zip(texts, STRONG, strict=True)]


def strategy_for(embedder: Embedder) -> SimilarityConsensus:
    """A similarity strategy on `embedder` with an empty in-memory cache (new answers)."""
    strategy = SimilarityConsensus(cache_path=None)
    strategy._embedder = CachedEmbedder(embedder, EmbeddingCache(None))
    return strategy


async def time_set(candidate: Candidate, texts: list[str]) -> None:
    answers = responses(texts)
    strategy = strategy_for(candidate.embedder)
    started = time.perf_counter()
    await strategy.find_consensus(answers, {})
    candidate.warm.append(time.perf_counter() - started)
    strategy = strategy_for(candidate.embedder)
    for early in answers[:2]:
        strategy.prepare(early)
    await asyncio.get_running_loop().run_in_executor(strategy._worker, lambda: None)  # both embedded
    started, cpu = time.perf_counter(), time.process_time()
    await strategy.find_consensus(answers, {})
    candidate.after_last.append(time.perf_counter() - started)
    candidate.after_last_cpu.append(time.process_time() - cpu)
    strategy._worker.shutdown()


def embed_all(embedder: Embedder, texts: list[str], tokens: np.ndarray) -> np.ndarray:
    """Every text's vector, in length order and chunks (padding small where a backend batches)."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    order = np.argsort(tokens)
    for start in range(0, len(texts), 16):
        chunk = order[start : start + 16]
        out[chunk] = embedder.embed([texts[i] for i in chunk])
    return out


def medoid_picks(vectors: np.ndarray) -> np.ndarray:
    """For vectors (instructions, 7 models, dim): the medoid of every 3-model subset."""
    picks = []
    for trio in itertools.combinations(range(vectors.shape[1]), 3):
        x = vectors[:, list(trio)]
        similarity = np.einsum("nid,njd->nij", x, x)
        mean_to_others = (similarity.sum(axis=2) - np.einsum("nii->ni", similarity)) / 2
        picks.append(np.argmax(np.round(mean_to_others, 9), axis=1))
    return np.stack(picks, axis=1)  # (instructions, 35)


def sensitivity(folder: Path, texts: list[str], tokens: np.ndarray, reference: np.ndarray, n: int) -> None:
    """Each group of weight ops quantised (dynamic int8) alone: how far it moves vectors and picks."""
    fp32 = folder / MODEL_FILES["onnx-fp32"]
    ref_picks = medoid_picks(reference.reshape(n, len(ALL), -1))
    spec = EmbeddingSpec(backend="onnx-fp32", cache_dir=str(folder))
    for label, nodes in matmul_groups(fp32).items():
        target = folder / f"model.only-{label}.onnx"
        quantise(fp32, target, nodes)
        vectors = embed_all(OnnxEmbedder(model_path(spec.model), spec, model_file=target), texts, tokens)
        cosine = (vectors * reference).sum(axis=1)
        same = (medoid_picks(vectors.reshape(n, len(ALL), -1)) == ref_picks).mean() * 100
        print(f"int8 only {label:<18} max 1-cos {1 - cosine.min():.2e}  same pick {same:.2f}%")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=int, default=200, help="instructions timed (3 answers each)")
    parser.add_argument("--agreement", type=int, default=403, help="instructions for pick agreement")
    parser.add_argument("--calibration", type=int, default=100, help="answers calibrating static int8")
    parser.add_argument("--sensitivity", action="store_true", help="also quantise each MatMul group alone")
    args = parser.parse_args()
    table = pl.read_parquet(DATA)
    wide = table.pivot(on="model", index="instruction", values="output", aggregate_function="first")
    rows = list(wide.iter_rows(named=True))
    calibration = [row[CALIBRATION_MODEL] for row in rows[: args.calibration]]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        candidates = build_candidates(folder, calibration)
        tokenizer = next(c.embedder for c in candidates if isinstance(c.embedder, OnnxEmbedder)).tokenizer

        def count(texts: list[str]) -> np.ndarray:
            return np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])

        for candidate in candidates:  # warm: first use, allocations, thread pools
            for _ in range(2):
                candidate.embedder.embed([rows[-1][m] for m in STRONG])

        timed = [[row[m] for m in STRONG] for row in rows[: args.sets]]
        started = time.perf_counter()
        for index, texts in enumerate(timed):
            shift = index % len(candidates)
            for candidate in candidates[shift:] + candidates[:shift]:
                asyncio.run(time_set(candidate, texts))
            if (index + 1) % 50 == 0:
                print(f"timed {index + 1} sets", file=sys.stderr, flush=True)
        timing_s = time.perf_counter() - started
        load = os.getloadavg()

        sample = rows[: args.agreement]
        texts = [row[m] for row in sample for m in ALL]
        tokens = count(texts)
        vectors: dict[str, np.ndarray] = {}
        for candidate in candidates:
            if candidate.numbers not in vectors:
                vectors[candidate.numbers] = embed_all(candidate.embedder, texts, tokens)
        reference = vectors["torch"]
        ref_picks = medoid_picks(reference.reshape(len(sample), len(ALL), -1))
        if args.sensitivity:
            onnx32 = next(c.embedder for c in candidates if c.name == "onnx_fp32")
            assert isinstance(onnx32, OnnxEmbedder)
            sensitivity(onnx32.model_file.parent, texts, tokens, reference, len(sample))

    set_tokens = np.array([count(t) for t in timed])  # (sets, 3)
    report(candidates, vectors, reference, ref_picks, len(sample), set_tokens, timing_s, load)


def report(
    candidates: list[Candidate],
    vectors: dict[str, np.ndarray],
    reference: np.ndarray,
    ref_picks: np.ndarray,
    n: int,
    set_tokens: np.ndarray,
    timing_s: float,
    load: tuple[float, float, float],
) -> None:
    last = set_tokens[:, 2]
    padded = set_tokens.max(axis=1) * 3
    print(
        f"{len(set_tokens)} sets of 3 answers timed in {timing_s:.0f} s (load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores); {n} instructions "
        f"x {len(ALL)} models = {ref_picks.size} sets of 3 for agreement"
    )
    print(
        f"tokens per answer (truncated at {MAX_TOKENS}): p50 {np.median(set_tokens):.0f}, mean "
        f"{set_tokens.mean():.0f}, share truncated {(set_tokens >= MAX_TOKENS).mean():.0%}; per set of 3: "
        f"p50 {np.median(set_tokens.sum(axis=1)):.0f}; a padded batch of 3 computes "
        f"{padded.sum() / set_tokens.sum() - 1:.0%} more tokens than the answers hold"
    )
    agreement: dict[str, tuple[float, float]] = {}
    for numbers, v in vectors.items():
        cosine = (v * reference).sum(axis=1)
        same = (medoid_picks(v.reshape(n, len(ALL), -1)) == ref_picks).mean() * 100
        agreement[numbers] = (same, float(1 - cosine.min()))
    print(
        f"{'candidate':<20} {'warm p50':>9} {'p95':>7} {'after-last p50':>15} {'p95':>7} {'CPU ms':>7} "
        f"{'ms/token':>9} {'GFLOP/s':>8} {'same pick %':>12} {'max 1-cos':>10}"
    )
    for c in candidates:
        per_token = sum(c.after_last) * 1000 / last.sum()
        same, deviation = agreement[c.numbers]
        print(
            f"{c.name:<20} {percentile(c.warm, 50):>9.1f} {percentile(c.warm, 95):>7.1f} "
            f"{percentile(c.after_last, 50):>15.1f} {percentile(c.after_last, 95):>7.1f} "
            f"{percentile(c.after_last_cpu, 50):>7.1f} {per_token:>9.3f} "
            f"{LINEAR_MFLOP_PER_TOKEN / per_token:>8.1f} {same:>12.2f} {deviation:>10.2e}"
        )
    buckets = [(1, 64), (65, 128), (129, 255), (256, 256)]
    print("after-last-answer p50 ms by the last answer's tokens (sets):")
    print(f"{'candidate':<20}" + "".join(f"{f'{lo}-{hi}':>12}" for lo, hi in buckets))
    counts = [int(((last >= lo) & (last <= hi)).sum()) for lo, hi in buckets]
    print(f"{'(sets)':<20}" + "".join(f"{k:>12}" for k in counts))
    for c in candidates:
        values = np.asarray(c.after_last) * 1000
        cells = [
            f"{np.median(values[(last >= lo) & (last <= hi)]):>12.1f}" if k else f"{'-':>12}"
            for (lo, hi), k in zip(buckets, counts, strict=True)
        ]
        print(f"{c.name:<20}" + "".join(cells))
    total = set_tokens.sum(axis=1)
    warm_buckets = [(1, 256), (257, 512), (513, 768)]
    print("warm p50 ms by the tokens of the 3 answers:")
    warm_counts = [int(((total >= lo) & (total <= hi)).sum()) for lo, hi in warm_buckets]
    print(
        f"{'(sets)':<20}"
        + "".join(f"{f'{lo}-{hi}: {k}':>14}" for (lo, hi), k in zip(warm_buckets, warm_counts, strict=True))
    )
    for c in candidates:
        values = np.asarray(c.warm) * 1000
        cells = [
            f"{np.median(values[(total >= lo) & (total <= hi)]):>14.1f}" if k else f"{'-':>14}"
            for (lo, hi), k in zip(warm_buckets, warm_counts, strict=True)
        ]
        print(f"{c.name:<20}" + "".join(cells))
    auto = resolve_backend("auto")
    print(f"auto resolves to {auto} here")
    for c in candidates:
        print(f"RESULT similarity_warm_p50_ms_{c.name} {percentile(c.warm, 50):.1f}")
        print(f"RESULT similarity_after_last_p50_ms_{c.name} {percentile(c.after_last, 50):.1f}")
    for numbers, (same, deviation) in agreement.items():
        key = numbers.replace("-", "_")
        print(f"RESULT similarity_same_pick_pct_{key} {same:.2f}")
        print(f"RESULT similarity_max_cos_deviation_{key} {deviation:.2e}")
    chosen = next(
        c for c in candidates if c.numbers == auto and not c.name.endswith(("_1t", "_2t", "_batched"))
    )
    print(f"RESULT similarity_consensus_warm_ms {percentile(chosen.warm, 50):.1f}")
    print(f"RESULT similarity_consensus_after_last_answer_ms {percentile(chosen.after_last, 50):.1f}")
    print(f"RESULT similarity_consensus_same_pick_pct {agreement[auto][0]:.2f}")
    print(
        f"RESULT similarity_consensus_warm_ms_torch_fp32 {statistics.median(candidates[0].warm) * 1000:.1f}"
    )


if __name__ == "__main__":
    main()
