"""Prediction-powered inference: many judge-labelled requests plus a few human-labelled ones give
a valid confidence interval for a model's true quality (or the difference between two models),
narrower than the human labels alone.

    ppi_mean(human, judge_on_human, judge_on_rest)                 # PPI++ (power-tuned)
    ppi_mean(human, judge_on_human, judge_on_rest, lam=1.0)        # plain PPI
    ppi_difference(human_a, human_b, judge_a, judge_b, judge_rest_a, judge_rest_b)

Conventions (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic, 2023, "Prediction-powered
inference", Science 382:669-674; Angelopoulos, Duchi & Zrnic, 2023, "PPI++", arXiv:2311.01453).
With n human labels Y, the judge's labels f on those n and on N other requests f~:
    theta = lam mean(f~) + mean(Y - lam f),   se^2 = lam^2 var(f~) / N + var(Y - lam f) / n
(variances with ddof 0), a normal interval. lam = 1 is PPI, lam = 0 the classical estimate from
the human labels alone; by default lam is the PPI++ variance-minimising value
cov(Y, f) / ((1 + n / N) var(f, f~)), clipped to [0, 1], as in the authors' `ppi_py`. The
effective sample size is the number of human labels a classical estimate would need for the
same standard error: n var(Y) / (n se^2); `gain` is its ratio to n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from orchestra.analysis.ab._data import as_array, check_confidence
from orchestra.errors import AnalysisError


@dataclass(frozen=True)
class PPIResult:
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    classical_estimate: float
    classical_se: float
    lam: float
    n_labelled: int
    n_unlabelled: int
    confidence: float = 0.95

    @property
    def effective_n(self) -> float:
        """Human labels a classical estimate would need for the same standard error."""
        return self.n_labelled * (self.classical_se / self.se) ** 2 if self.se > 0 else math.inf

    @property
    def gain(self) -> float:
        return self.effective_n / self.n_labelled

    @property
    def verdict(self) -> str:
        return (
            f"prediction-powered estimate {self.estimate:.4g}, {self.confidence:.0%} CI "
            f"[{self.ci_low:.4g}, {self.ci_high:.4g}] from {self.n_labelled} human and "
            f"{self.n_unlabelled} judge-only labels (lambda {self.lam:.2f}); worth "
            f"{self.effective_n:.0f} human labels ({self.gain:.2f}x); classical "
            f"{self.classical_estimate:.4g} +- {self.classical_se:.3g}."
        )


def ppi_mean(
    labels: Any,
    predictions: Any,
    unlabelled_predictions: Any,
    *,
    lam: float | None = None,
    confidence: float = 0.95,
) -> PPIResult:
    """The mean of the true labels, from human `labels`, the judge's `predictions` on the same
    items and its `unlabelled_predictions` on the rest (no missing values)."""
    confidence = check_confidence(confidence)
    y, f = as_array(labels, "labels"), as_array(predictions, "predictions")
    rest = as_array(unlabelled_predictions, "unlabelled predictions")
    if y.size != f.size:
        raise AnalysisError(f"labels and predictions on them must align ({y.size} vs {f.size})")
    for name, array in (("labels", y), ("predictions", f), ("unlabelled predictions", rest)):
        if not np.isfinite(array).all():
            raise AnalysisError(f"{name} hold missing or infinite values: drop those items first")
    if y.size < 2 or rest.size < 2:
        raise AnalysisError(
            f"PPI needs at least 2 labelled and 2 unlabelled items (got {y.size} and {rest.size})"
        )
    n, big_n = y.size, rest.size
    if lam is None:
        pooled_variance = float(np.var(np.concatenate([f, rest]), ddof=1))
        covariance = float(np.mean((y - y.mean()) * (f - f.mean())))
        lam = (
            0.0
            if pooled_variance == 0
            else min(max(covariance / ((1 + n / big_n) * pooled_variance), 0.0), 1.0)
        )
    elif not (math.isfinite(lam) and 0 <= lam <= 1):
        raise AnalysisError(f"lam must lie in [0, 1] (got {lam!r})")
    estimate = float(lam * rest.mean() + (y - lam * f).mean())
    se = math.sqrt(lam**2 * np.var(rest) / big_n + np.var(y - lam * f) / n)
    half = stats.norm.ppf(0.5 + confidence / 2) * se
    return PPIResult(
        estimate=estimate,
        ci_low=estimate - half,
        ci_high=estimate + half,
        se=se,
        classical_estimate=float(y.mean()),
        classical_se=float(np.std(y) / math.sqrt(n)),
        lam=float(lam),
        n_labelled=n,
        n_unlabelled=big_n,
        confidence=confidence,
    )


def ppi_difference(
    labels_a: Any,
    labels_b: Any,
    predictions_a: Any,
    predictions_b: Any,
    unlabelled_a: Any,
    unlabelled_b: Any,
    **options: Any,
) -> PPIResult:
    """True quality of B minus A on the same items: PPI on the per-item differences."""
    return ppi_mean(
        as_array(labels_b, "labels B") - _aligned(labels_a, labels_b, "labels"),
        as_array(predictions_b, "predictions B") - _aligned(predictions_a, predictions_b, "predictions"),
        as_array(unlabelled_b, "unlabelled B") - _aligned(unlabelled_a, unlabelled_b, "unlabelled"),
        **options,
    )


def _aligned(a: Any, b: Any, name: str) -> np.ndarray:
    first, second = as_array(a, f"{name} A"), as_array(b, f"{name} B")
    if first.size != second.size:
        raise AnalysisError(f"{name} of A and B must be on the same items ({first.size} vs {second.size})")
    return first
