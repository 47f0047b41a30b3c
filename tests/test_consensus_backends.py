"""The ONNX embedding backends: torch float32's vectors and medoid picks on recorded answers,
the rule behind `auto`, batching by length, and an export made once and then reused."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from orchestra.consensus.embeddings import (
    DEFAULT_MODEL,
    EmbeddingSpec,
    OnnxEmbedder,
    auto_backend,
    length_batches,
    load_embedder,
    model_path,
    resolve_backend,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "alpacaeval" / "responses.parquet"
MODELS = ["gpt4", "claude-2.1", "gemini-pro", "gpt-3.5-turbo-0301", "Mixtral-8x7B-Instruct-v0.1"]
TOLERANCE = 1e-5
"""Largest 1 - cos between an onnx-fp32 vector and torch float32's (measured: ~1e-7)."""


@pytest.fixture(scope="module")
def answers() -> list[list[str]]:
    """The answers of five models to the first 8 AlpacaEval instructions (a fixed sample)."""
    table = pl.read_parquet(DATA).filter(pl.col("instruction_id") < 8).sort("instruction_id")
    wide = table.pivot(on="model", index="instruction_id", values="output", aggregate_function="first")
    return [[row[m] for m in MODELS] for row in wide.sort("instruction_id").iter_rows(named=True)]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def onnx_embedder(backend: str, cache_dir: Path) -> OnnxEmbedder:
    """A new embedder (not the process's shared one), so that each construction is observed."""
    return OnnxEmbedder(model_path(DEFAULT_MODEL), EmbeddingSpec(backend=backend, cache_dir=str(cache_dir)))


@pytest.fixture(scope="module")
def onnx_fp32(cache_dir) -> OnnxEmbedder:
    return onnx_embedder("onnx-fp32", cache_dir)


def medoids(vectors: np.ndarray) -> list[int]:
    """The medoid of every 3-answer subset of one instruction's answers (ties: the earliest)."""
    picks = []
    for trio in itertools.combinations(range(len(vectors)), 3):
        similarity = vectors[list(trio)] @ vectors[list(trio)].T
        np.fill_diagonal(similarity, 0.0)
        picks.append(int(np.argmax(np.round(similarity.sum(axis=1) / 2, 9))))
    return picks


def test_onnx_fp32_gives_torch_float32_vectors_and_picks(onnx_fp32, answers):
    torch32 = load_embedder(EmbeddingSpec(backend="torch"))
    for texts in answers:
        reference, vectors = torch32.embed(texts), onnx_fp32.embed(texts)
        assert vectors.shape == reference.shape == (len(MODELS), 384)
        assert float((1 - (vectors * reference).sum(axis=1)).max()) < TOLERANCE
        assert medoids(vectors) == medoids(reference)  # 10 sets of three per instruction


def test_texts_embedded_together_or_one_by_one_give_the_same_vectors(onnx_fp32, answers):
    texts = [text for row in answers[:3] for text in row]
    together = onnx_fp32.embed(texts)
    alone = np.vstack([onnx_fp32.embed([text]) for text in texts])
    assert float((1 - (together * alone).sum(axis=1)).max()) < 1e-6


def test_the_export_is_made_once_and_reused(onnx_fp32, cache_dir):
    assert onnx_fp32.made == ["model.fp32.onnx"]
    int8 = onnx_embedder("onnx-int8", cache_dir)
    assert int8.made == ["model.int8.onnx"]  # quantised from the float32 export on disk
    assert onnx_embedder("onnx-fp32", cache_dir).made == []
    assert onnx_embedder("onnx-int8", cache_dir).made == []
    folder = onnx_fp32.model_file.parent
    assert sorted(p.name for p in folder.iterdir()) == ["model.fp32.onnx", "model.int8.onnx"]  # no partials
    assert int8.embed(["an answer"]).shape == (1, 384)


def test_auto_is_bf16_on_bf16_cpus_else_onnx_fp32_where_installed_else_torch():
    assert auto_backend(bf16_cpu=True, onnx_installed=True) == "torch-bf16"
    assert auto_backend(bf16_cpu=False, onnx_installed=True) == "onnx-fp32"
    assert auto_backend(bf16_cpu=False, onnx_installed=False) == "torch"
    assert auto_backend(bf16_cpu=False, onnx_installed=True, model="/models/another-model") == "torch"
    flags = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    installed = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx"))
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    assert resolve_backend("auto") == auto_backend(bf16, installed)
    assert resolve_backend("onnx-int8") == "onnx-int8"


def test_texts_are_batched_only_with_texts_of_similar_length():
    assert length_batches([40, 256, 120, 250]) == [[0], [2], [3, 1]]
    assert length_batches([30] * 40) == [list(range(32)), list(range(32, 40))]
    assert length_batches([]) == []
