"""A learned router: k-nearest-neighbour estimates of each provider's quality and cost per prompt.

Fitted on a table of (prompt, provider, quality, cost_usd) rows, i.e. logged calls with quality
labels. For a new prompt it finds the `k` most similar training prompts, averages each
provider's quality and cost over them (weighted by similarity, shrunk toward the provider's
overall mean by `prior_strength` pseudo-observations) and scores `quality - cost_weight * cost`.

    policy = KNNRoutingPolicy.fit(table, features="hashing", k=25, cost_weight=5.0)
    policy.save("models/router")                    # JSON + npz, no pickle
    policy.assert_unseen(evaluation_prompts)        # AnalysisError if it trained on any of them
    orch.task_router.set_learned_policy(KNNRoutingPolicy.load("models/router"))

Quality estimates are calibrated: a per-provider Platt (or isotonic) map, fitted on
out-of-fold estimates of the training prompts, turns the neighbour average into the
probability of a good answer (`estimates(..., calibrated=False)` gives the raw average).

Features: "hashing" (word 1-2 gram hashing, l2-normalised; ~0.1 ms per prompt, nothing to
download) or "minilm" (the packaged all-MiniLM-L6-v2 sentence embedding; ~10 ms per prompt).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestra.errors import AnalysisError, ConfigError
from orchestra.routing.calibration import Method, ProbabilityCalibrator

if TYPE_CHECKING:
    import polars as pl
    from scipy import sparse

FEATURES = ("hashing", "minilm")
_HASH_FEATURES = 2**18
_MIN_CALIBRATION_LABELS = 20


def prompt_digest(prompt: str) -> str:
    """A short stable fingerprint of a prompt (policies store these, not the training prompts)."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def featurise(prompts: list[str], features: str) -> np.ndarray | sparse.csr_matrix:
    """Prompt vectors with unit norm (so a dot product is the cosine similarity)."""
    if features == "hashing":
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(
            n_features=_HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2"
        )
        return vectorizer.transform(prompts).tocsr().astype(np.float32)
    if features == "minilm":
        from orchestra.consensus.embeddings import EmbeddingSpec, load_embedder

        return load_embedder(EmbeddingSpec()).embed(prompts).astype(np.float32)
    raise ConfigError(f"learned routing features {features!r}; available: {', '.join(FEATURES)}")


class KNNRoutingPolicy:
    """Per-prompt quality and cost estimates for each provider, from the nearest training prompts."""

    def __init__(
        self,
        providers: list[str],
        vectors: np.ndarray | sparse.csr_matrix,
        quality: np.ndarray,
        cost: np.ndarray,
        *,
        features: str = "hashing",
        k: int = 25,
        prior_strength: float = 2.0,
        cost_weight: float = 0.0,
        metadata: dict[str, Any] | None = None,
        calibrators: dict[str, ProbabilityCalibrator] | None = None,
    ) -> None:
        if quality.shape != (vectors.shape[0], len(providers)) or cost.shape != quality.shape:
            raise ValueError("quality and cost need one row per training prompt, one column per provider")
        self.providers = list(providers)
        self.vectors = vectors
        self.quality = quality
        self.cost = cost
        self.features = features
        self.k = k
        self.prior_strength = prior_strength
        self.cost_weight = cost_weight
        self.metadata = dict(metadata or {})
        self.calibrators = dict(calibrators or {})
        self.quality_prior = np.nan_to_num(np.nanmean(quality, axis=0), nan=0.0)
        self.cost_prior = np.nan_to_num(np.nanmean(cost, axis=0), nan=0.0)

    @classmethod
    def fit(
        cls,
        table: pl.DataFrame,
        *,
        features: str = "hashing",
        k: int = 25,
        prior_strength: float = 2.0,
        cost_weight: float = 0.0,
        providers: list[str] | None = None,
        calibration: Method | None = "platt",
        calibration_folds: int = 5,
    ) -> KNNRoutingPolicy:
        """Fit on rows of prompt, provider, quality (and cost_usd); repeated pairs are averaged.

        `calibration` (isotonic, platt or None) fits each provider's calibrator on out-of-fold
        estimates (`calibration_folds` folds of the training prompts)."""
        import polars as pl

        missing = {"prompt", "provider", "quality"} - set(table.columns)
        if missing:
            raise ConfigError(f"training table lacks columns {sorted(missing)}")
        rows = table.filter(pl.col("quality").is_not_null())
        if "cost_usd" not in rows.columns:
            rows = rows.with_columns(pl.lit(0.0).alias("cost_usd"))
        if rows.is_empty():
            raise ConfigError("no training rows with a quality label")
        names = providers or sorted(rows["provider"].unique().to_list())
        means = rows.group_by("prompt", "provider").agg(pl.col("quality").mean(), pl.col("cost_usd").mean())
        prompts = sorted(means["prompt"].unique().to_list())
        quality = _pivot(means, prompts, names, "quality")
        cost = _pivot(means, prompts, names, "cost_usd")
        metadata = {
            "training_prompts": len(prompts),
            "training_rows": rows.height,
            "prompt_digests": [prompt_digest(p) for p in prompts],
        }
        policy = cls(
            names,
            featurise(prompts, features),
            quality,
            cost,
            features=features,
            k=k,
            prior_strength=prior_strength,
            cost_weight=cost_weight,
            metadata=metadata,
        )
        if calibration is not None:
            policy.calibrators = policy.fit_calibrators(calibration, calibration_folds)
            policy.metadata["calibration"] = calibration
        return policy

    def out_of_fold_quality(self, folds: int = 5) -> np.ndarray:
        """Raw quality estimates of each training prompt from the other folds' neighbours."""
        n = self.vectors.shape[0]
        digests = self.metadata.get("prompt_digests") or [format(i, "x") for i in range(n)]
        fold_of = np.array([int(d, 16) % folds for d in digests])
        similarity = _dense(self.vectors @ self.vectors.T)
        result = np.full(self.quality.shape, np.nan)
        for fold in range(folds):
            held, train = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
            if held.size == 0 or train.size == 0:
                continue
            prior = np.nan_to_num(np.nanmean(self.quality[train], axis=0), nan=0.0)
            result[held] = self._neighbour_mean(similarity[np.ix_(held, train)], self.quality[train], prior)
        return result

    def fit_calibrators(self, method: Method = "platt", folds: int = 5) -> dict[str, ProbabilityCalibrator]:
        """Per provider, a calibrator from out-of-fold estimates to the observed labels (providers
        with fewer than 20 labels, or a single label value, stay uncalibrated)."""
        estimated = self.out_of_fold_quality(folds)
        calibrators = {}
        for j, provider in enumerate(self.providers):
            labels = self.quality[:, j]
            known = ~np.isnan(labels) & ~np.isnan(estimated[:, j])
            if known.sum() < _MIN_CALIBRATION_LABELS or np.ptp(labels[known]) == 0:
                continue
            calibrators[provider] = ProbabilityCalibrator.fit(estimated[known, j], labels[known], method)
        return calibrators

    def estimates(self, prompts: list[str], *, calibrated: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Expected quality (calibrated, where a calibrator was fitted) and cost, each
        (len(prompts), len(providers))."""
        similarity = _dense(self.vectors @ featurise(prompts, self.features).T).T
        quality = self._neighbour_mean(similarity, self.quality, self.quality_prior)
        cost = self._neighbour_mean(similarity, self.cost, self.cost_prior)
        return (self.calibrate(quality) if calibrated else quality), cost

    def calibrate(self, quality: np.ndarray) -> np.ndarray:
        """Raw quality estimates (one column per provider) mapped to calibrated probabilities."""
        result = np.array(quality, dtype=float, copy=True)
        for j, provider in enumerate(self.providers):
            calibrator = self.calibrators.get(provider)
            if calibrator is not None:
                result[:, j] = calibrator.predict(result[:, j])
        return result

    def _neighbour_mean(self, similarity: np.ndarray, values: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Similarity-weighted mean over the k nearest rows, shrunk toward `prior`."""
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 0.0, None) + 1e-6
        neighbours = values[nearest]  # (prompts, k, providers)
        known = ~np.isnan(neighbours)
        weight = weights[:, :, None] * known
        total = (weight * np.nan_to_num(neighbours)).sum(axis=1) + self.prior_strength * prior
        return total / (weight.sum(axis=1) + self.prior_strength)

    def trained_on(self, prompts: list[str]) -> list[str]:
        """Those of `prompts` that were among the training prompts."""
        digests = set(self.metadata.get("prompt_digests", []))
        return [p for p in prompts if prompt_digest(p) in digests]

    def assert_unseen(self, prompts: list[str]) -> None:
        """Raise `AnalysisError` when the policy was trained on any of the evaluation `prompts`."""
        if "prompt_digests" not in self.metadata:
            raise AnalysisError("the policy does not record its training prompts: cannot rule out a leak")
        seen = self.trained_on(prompts)
        if seen:
            raise AnalysisError(
                f"the policy was trained on {len(seen)} of the {len(prompts)} evaluation prompts "
                f"(e.g. {seen[0][:60]!r}): evaluate it on prompts it has not seen"
            )

    def expected_quality(self, prompts: list[str], providers: list[str]) -> np.ndarray:
        """The calibrated expected quality of `providers[i]` on `prompts[i]` (a reward model for
        doubly-robust off-policy estimates); a provider unknown to the policy gets NaN."""
        quality, _ = self.estimates(prompts)
        index = {p: j for j, p in enumerate(self.providers)}
        return np.array(
            [quality[i, index[p]] if p in index else np.nan for i, p in enumerate(providers)], dtype=float
        )

    def utilities(self, prompts: list[str]) -> np.ndarray:
        quality, cost = self.estimates(prompts)
        return quality - self.cost_weight * cost

    def choose(self, prompts: list[str], candidates: list[str] | None = None) -> list[str]:
        """The best provider for each prompt (among `candidates`, default all)."""
        allowed = [p for p in (candidates or self.providers) if p in self.providers]
        if not allowed:
            raise ConfigError(f"none of {candidates} is known to the learned policy ({self.providers})")
        columns = [self.providers.index(p) for p in allowed]
        best = self.utilities(prompts)[:, columns].argmax(axis=1)
        return [allowed[i] for i in best]

    def predict(
        self, prompt: str, task_type: str, complexity: str, candidates: list[str]
    ) -> dict[str, float]:
        """Utility per known candidate (the `learned` routing strategy's interface)."""
        utility = self.utilities([prompt])[0]
        return {p: float(utility[self.providers.index(p)]) for p in candidates if p in self.providers}

    def with_cost_weight(self, cost_weight: float) -> KNNRoutingPolicy:
        """The same neighbours, another trade-off (no refit)."""
        return KNNRoutingPolicy(
            self.providers,
            self.vectors,
            self.quality,
            self.cost,
            features=self.features,
            k=self.k,
            prior_strength=self.prior_strength,
            cost_weight=cost_weight,
            metadata=self.metadata,
            calibrators=self.calibrators,
        )

    def save(self, folder: str | Path) -> Path:
        """`policy.json` (settings) and `arrays.npz` (training vectors, quality, cost)."""
        from scipy import sparse  # ~0.1 s to import: only where a policy is saved or loaded

        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        settings = {
            "kind": "knn",
            "providers": self.providers,
            "features": self.features,
            "k": self.k,
            "prior_strength": self.prior_strength,
            "cost_weight": self.cost_weight,
            "metadata": self.metadata,
            "calibrators": {p: c.to_dict() for p, c in self.calibrators.items()},
        }
        (target / "policy.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        arrays: dict[str, Any] = {"quality": self.quality, "cost": self.cost}
        if sparse.issparse(self.vectors):
            csr = sparse.csr_matrix(self.vectors)
            arrays |= {
                "data": csr.data,
                "indices": csr.indices,
                "indptr": csr.indptr,
                "shape": np.array(csr.shape),
            }
        else:
            arrays["dense"] = np.asarray(self.vectors)
        np.savez_compressed(target / "arrays.npz", **arrays)
        return target

    @classmethod
    def load(cls, folder: str | Path) -> KNNRoutingPolicy:
        from scipy import sparse  # ~0.1 s to import: only where a policy is saved or loaded

        source = Path(folder)
        try:
            settings = json.loads((source / "policy.json").read_text(encoding="utf-8"))
            arrays = np.load(source / "arrays.npz")
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read the learned routing policy in {source}: {err}") from err
        if "dense" in arrays:
            vectors: np.ndarray | sparse.csr_matrix = arrays["dense"]
        else:
            shape = (int(arrays["shape"][0]), int(arrays["shape"][1]))
            vectors = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(
            settings["providers"],
            vectors,
            arrays["quality"],
            arrays["cost"],
            features=settings["features"],
            k=settings["k"],
            prior_strength=settings["prior_strength"],
            cost_weight=settings["cost_weight"],
            metadata=settings.get("metadata"),
            calibrators={
                p: ProbabilityCalibrator.from_dict(c) for p, c in settings.get("calibrators", {}).items()
            },
        )

    def __repr__(self) -> str:
        return (
            f"KNNRoutingPolicy({len(self.providers)} providers, {self.vectors.shape[0]} prompts, "
            f"features={self.features}, k={self.k}, cost_weight={self.cost_weight})"
        )


def _dense(matrix: Any) -> np.ndarray:
    """A dense array of `matrix` (a product with sparse TF-IDF vectors is a sparse matrix)."""
    dense = getattr(matrix, "todense", None)  # scipy's sparse matrices have it; arrays do not
    return np.asarray(dense() if dense is not None else matrix)


def _pivot(means: pl.DataFrame, prompts: list[str], providers: list[str], column: str) -> np.ndarray:
    import polars as pl

    index = {p: i for i, p in enumerate(prompts)}
    matrix = np.full((len(prompts), len(providers)), np.nan)
    for j, provider in enumerate(providers):
        part = means.filter(pl.col("provider") == provider)
        rows = [index[p] for p in part["prompt"].to_list()]
        matrix[rows, j] = part[column].to_numpy()
    return matrix
