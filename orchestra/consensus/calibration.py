"""Calibrated consensus confidence: the probability that the chosen answer is good.

Two tools, both fitted on labelled logs (answers with quality labels):

- `CalibratedConsensus(strategy, calibrator)` wraps any strategy and maps its confidence (mean
  similarity, vote share, ...) to a probability with a `ProbabilityCalibrator` (Platt or
  isotonic, scikit-learn); the raw value stays in the outcome's details.
- `AnswerQualityModel` predicts, per answer, the probability that it is good from what is known
  before any label: its agreement with the other answers (TF-IDF cosine), its provider's
  record, its length (absolute and against the others), and the provider's logprob confidence
  when given. A scikit-learn logistic regression, calibrated out of fold (Platt). The
  `confidence` consensus strategy uses it to pick the most probably good answer.

    groups = answer_groups(load_requests(run_ids=[run]))      # [(answers, labels), ...]
    model = AnswerQualityModel.fit(groups)
    model.save("models/answer_quality.json")
    consensus: {strategies: {confidence: {model: models/answer_quality.json}}}

An outcome whose confidence went through a calibrator or the model says so
(`details["confidence_calibrated"]`); every other confidence is uncalibrated, and the request
metadata's `confidence_calibrated` is False.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.context import TaskContext
from orchestra.consensus.lexical import tfidf_similarity
from orchestra.errors import ConfigError
from orchestra.frames import as_frame
from orchestra.routing.calibration import Method, ProbabilityCalibrator, fit_soft_logistic, sigmoid
from orchestra.types import ModelResponse

FEATURES = ("agreement", "provider_prior", "log_chars", "relative_chars", "logprob", "has_logprob")

Answer = tuple[str, str, float | None]
"""(provider, text, logprob confidence or None)."""


class CalibratedConsensus(ConsensusStrategy):
    """Any strategy, its confidence mapped to P(good answer) by a fitted calibrator."""

    def __init__(self, strategy: ConsensusStrategy, calibrator: ProbabilityCalibrator) -> None:
        self.strategy = strategy
        self.calibrator = calibrator
        self.name = f"{strategy.name}+calibrated"

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The wrapped strategy's outcome, its confidence calibrated (the raw one in the details)."""
        outcome = await self.strategy.decide(responses, context)
        raw = outcome.confidence
        probability = float(self.calibrator.predict([raw if raw is not None else math.nan])[0])
        details = {
            **outcome.details,
            "confidence_calibrated": not math.isnan(probability),
            "raw_confidence": raw,
            "calibrator": self.calibrator.method,
        }
        return replace(outcome, confidence=probability, details=details)


def answer_features(
    answers: list[Answer], provider_prior: dict[str, float], default_prior: float
) -> np.ndarray:
    """One row of `FEATURES` per answer of one consensus set."""
    texts = [text for _, text, _ in answers]
    n = len(texts)
    if n > 1:
        similarity = tfidf_similarity(texts)
        agreement = (similarity.sum(axis=1) - np.diag(similarity)) / (n - 1)
    else:
        agreement = np.ones(1)
    lengths = np.array([len(t.strip()) for t in texts], dtype=float)
    mean_length = lengths.mean() if lengths.mean() > 0 else 1.0
    return np.array(
        [
            [
                agreement[i],
                provider_prior.get(provider, default_prior),
                math.log1p(lengths[i]),
                lengths[i] / mean_length,
                0.0 if logprob is None else float(logprob),
                float(logprob is not None),
            ]
            for i, (provider, _, logprob) in enumerate(answers)
        ]
    )


@dataclass
class AnswerQualityModel:
    """P(good | answer features): logistic regression on standardised features, Platt-calibrated."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibrator: ProbabilityCalibrator | None
    provider_prior: dict[str, float]
    default_prior: float
    n: int = 0

    @classmethod
    def fit(
        cls, groups: list[tuple[list[Answer], list[float]]], *, folds: int = 5, method: Method = "platt"
    ) -> AnswerQualityModel:
        """Fit on consensus sets with a label in [0, 1] per answer (unlabelled answers dropped).
        Provider priors are the providers' mean labels; out of fold for the calibrator."""
        labelled = [(a, y) for a, y in groups if len(a) == len(y)]
        if len(labelled) < 10:
            raise ConfigError(f"{len(labelled)} labelled consensus sets; need at least 10 to fit")
        fold_of = np.arange(len(labelled)) % folds
        rows, labels, row_fold = [], [], []
        for f in range(folds):  # provider priors from the other folds: no answer sees its own label
            prior, default = _priors([labelled[i] for i in range(len(labelled)) if fold_of[i] != f])
            for i in np.flatnonzero(fold_of == f):
                answers, y = labelled[i]
                rows.append(answer_features(answers, prior, default))
                labels += list(y)
                row_fold += [f] * len(answers)
        x, y_all, fold = np.vstack(rows), np.array(labels, dtype=float), np.array(row_fold)
        keep = ~np.isnan(y_all)
        mean, scale = x[keep].mean(axis=0), x[keep].std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        coef, intercept = fit_soft_logistic((x[keep] - mean) / scale, y_all[keep])
        raw = np.full(y_all.shape, np.nan)
        for f in range(folds):
            train, held = keep & (fold != f), keep & (fold == f)
            if train.sum() < 10 or held.sum() == 0 or np.ptp(y_all[train]) == 0:
                continue
            c, b = fit_soft_logistic((x[train] - mean) / scale, y_all[train])
            raw[held] = sigmoid(((x[held] - mean) / scale) @ c + b)
        usable = ~np.isnan(raw)
        calibrator = (
            ProbabilityCalibrator.fit(raw[usable], y_all[usable], method)
            if usable.sum() >= 10 and np.ptp(y_all[usable]) > 0
            else None
        )
        prior, default = _priors(labelled)
        return cls(mean, scale, coef, intercept, calibrator, prior, default, int(keep.sum()))

    def probabilities(self, answers: list[Answer]) -> np.ndarray:
        """P(good) for each answer of one consensus set."""
        x = answer_features(answers, self.provider_prior, self.default_prior)
        raw = sigmoid(((x - self.mean) / self.scale) @ self.coef + self.intercept)
        return self.calibrator.predict(raw) if self.calibrator is not None else raw

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "answer_quality",
            "features": list(FEATURES),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "calibrator": self.calibrator.to_dict() if self.calibrator else None,
            "provider_prior": self.provider_prior,
            "default_prior": self.default_prior,
            "n": self.n,
        }

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> AnswerQualityModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read the answer-quality model {path}: {err}") from err
        if data.get("features") != list(FEATURES):
            raise ConfigError(f"the answer-quality model {path} was fitted on other features: refit it")
        return cls(
            np.array(data["mean"]),
            np.array(data["scale"]),
            np.array(data["coef"]),
            float(data["intercept"]),
            ProbabilityCalibrator.from_dict(data["calibrator"]) if data.get("calibrator") else None,
            {k: float(v) for k, v in data["provider_prior"].items()},
            float(data["default_prior"]),
            int(data.get("n", 0)),
        )


def answer_groups(requests: Any) -> list[tuple[list[Answer], list[float]]]:
    """Consensus sets from a logged request table: each request's successful calls (provider,
    answer, logprob confidence) and their quality labels (NaN when unlabelled)."""
    import polars as pl

    call = pl.List(
        pl.Struct(
            {
                "provider": pl.String,
                "ok": pl.Boolean,
                "content": pl.String,
                "quality": pl.Float64,
                "confidence": pl.Float64,
            }
        )
    )
    frame = as_frame(requests).select(pl.col("calls_json").str.json_decode(call).alias("calls"))
    groups = []
    for (calls,) in frame.iter_rows():
        answered = [c for c in calls or [] if c["ok"] and c["content"] is not None]
        if len(answered) >= 2:
            groups.append(
                (
                    [(c["provider"], c["content"], c["confidence"]) for c in answered],
                    [math.nan if c["quality"] is None else c["quality"] for c in answered],
                )
            )
    return groups


def _priors(groups: list[tuple[list[Answer], list[float]]]) -> tuple[dict[str, float], float]:
    """Each provider's mean label, and the overall mean for providers not seen."""
    sums: dict[str, list[float]] = {}
    for answers, labels in groups:
        for (provider, _, _), label in zip(answers, labels, strict=True):
            if not math.isnan(label):
                sums.setdefault(provider, []).append(label)
    everything = [v for values in sums.values() for v in values]
    default = float(np.mean(everything)) if everything else 0.5
    return {p: float(np.mean(v)) for p, v in sums.items()}, default
