"""Calibrated probabilities: map a raw score (a router's predicted quality, a consensus
confidence) to the probability that the answer is good, fitted on labelled logs.

    calibrator = ProbabilityCalibrator.fit(scores, labels, method="isotonic")
    calibrator.predict([0.2, 0.9])                    # probabilities in [0, 1]
    ProbabilityCalibrator.from_dict(calibrator.to_dict())  # saved as JSON, no pickle

Labels are in [0, 1]: 1/0 for right/wrong (GSM8K), the win score 1/0.5/0 for AlpacaEval (read
as the probability that the answer is good). scikit-learn does the fitting: `IsotonicRegression`
(monotone, no shape assumed; needs a few hundred labels) or Platt scaling (a one-feature
`LogisticRegression`, two parameters; safer on few labels). Both keep the order of the scores:
when the fitted Platt slope is not positive, the score carries no usable information and the
calibrator returns the base rate. Fractional labels enter Platt
scaling as two weighted rows, one per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["isotonic", "platt"]
METHODS = ("isotonic", "platt")


@dataclass(frozen=True)
class ProbabilityCalibrator:
    """A fitted monotone map from score to probability (isotonic steps or a logistic curve)."""

    method: Method
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()
    slope: float = 0.0
    intercept: float = 0.0
    n: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, scores: Any, labels: Any, method: Method = "isotonic") -> ProbabilityCalibrator:
        """Fit on pairs (score, label in [0, 1]); pairs with a missing value are dropped."""
        x = np.asarray(scores, dtype=float)
        y = np.asarray(labels, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"scores and labels differ in length ({x.size} vs {y.size})")
        keep = ~(np.isnan(x) | np.isnan(y))
        x, y = x[keep], y[keep]
        if x.size < 2:
            raise ValueError("a calibrator needs at least two labelled scores")
        if (y < 0).any() or (y > 1).any():
            raise ValueError("labels must lie in [0, 1]")
        if method == "isotonic":
            return cls._isotonic(x, y)
        if method == "platt":
            return cls._platt(x, y)
        raise ValueError(f"calibration method {method!r}; available: {', '.join(METHODS)}")

    @classmethod
    def _isotonic(cls, x: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return cls(
            "isotonic",
            knots_x=tuple(float(v) for v in model.X_thresholds_),
            knots_y=tuple(float(v) for v in model.y_thresholds_),
            n=int(x.size),
        )

    @classmethod
    def _platt(cls, x: np.ndarray, y: np.ndarray) -> ProbabilityCalibrator:
        from sklearn.linear_model import LogisticRegression

        mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        constant = cls("platt", slope=0.0, intercept=math.log(mean / (1 - mean)), n=int(x.size))
        if np.ptp(y) == 0 or np.ptp(x) == 0:  # nothing to learn: the base rate is the calibration
            return constant
        features = np.concatenate([x, x])[:, None]
        targets = np.concatenate([np.ones_like(y), np.zeros_like(y)])
        weights = np.concatenate([y, 1.0 - y])
        keep = weights > 0
        model = LogisticRegression(C=100.0).fit(features[keep], targets[keep], sample_weight=weights[keep])
        if model.coef_[0, 0] <= 0:  # a calibrator keeps the order of the scores: none is found here
            return constant
        return cls(
            "platt", slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0]), n=int(x.size)
        )

    def predict(self, scores: Any) -> np.ndarray:
        """Probabilities for `scores` (NaN stays NaN). Isotonic: linear between the fitted
        steps and clipped outside them, as scikit-learn's `IsotonicRegression.predict`."""
        x = np.asarray(scores, dtype=float)
        if self.method == "isotonic":
            if len(self.knots_x) == 1:
                result = np.full_like(x, self.knots_y[0])
            else:
                result = np.interp(x, self.knots_x, self.knots_y)
        else:
            result = 1.0 / (1.0 + np.exp(-(self.slope * x + self.intercept)))
        return np.where(np.isnan(x), np.nan, result)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "knots_x": list(self.knots_x),
            "knots_y": list(self.knots_y),
            "slope": self.slope,
            "intercept": self.intercept,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbabilityCalibrator:
        return cls(
            data["method"],
            knots_x=tuple(data.get("knots_x", ())),
            knots_y=tuple(data.get("knots_y", ())),
            slope=float(data.get("slope", 0.0)),
            intercept=float(data.get("intercept", 0.0)),
            n=int(data.get("n", 0)),
        )


@dataclass(frozen=True)
class Reliability:
    """How well probabilities match outcomes on held-out labels: ECE, Brier, and Brier of the
    constant guess (the base rate), so "better than a constant" can be read off directly."""

    ece: float
    brier: float
    brier_constant: float
    spearman: float
    n: int

    @property
    def skill(self) -> float:
        """Brier skill score: 1 - Brier / Brier of the constant (> 0 beats the constant)."""
        return 1.0 - self.brier / self.brier_constant if self.brier_constant > 0 else math.nan

    def __str__(self) -> str:
        return (
            f"ECE {self.ece:.3f}, Brier {self.brier:.4f} (constant {self.brier_constant:.4f}, "
            f"skill {self.skill:+.3f}), Spearman {self.spearman:+.3f}, n={self.n}"
        )


def reliability(
    probabilities: Any, labels: Any, *, base_rate: float | None = None, bins: int = 10
) -> Reliability:
    """ECE and Brier score (from `orchestra.analysis.calibration`) with the constant baseline:
    `base_rate` (e.g. the training labels' mean; default the held-out mean itself)."""
    from scipy import stats

    from orchestra.analysis.calibration import calibration

    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    keep = ~(np.isnan(p) | np.isnan(y))
    report = calibration(confidence=np.clip(p[keep], 0.0, 1.0), quality=y[keep], bins=bins)
    constant = float(y[keep].mean()) if base_rate is None else float(base_rate)
    spearman = (
        float(stats.spearmanr(p[keep], y[keep]).statistic)
        if np.ptp(p[keep]) > 0 and np.ptp(y[keep]) > 0
        else math.nan
    )
    return Reliability(
        ece=report.ece,
        brier=report.brier,
        brier_constant=float(np.mean((constant - y[keep]) ** 2)),
        spearman=spearman,
        n=report.n,
    )


def fit_soft_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float]:
    """scikit-learn's L2 logistic regression on labels in [0, 1] (each row counted once per
    class, weighted by y and 1 - y); returns (coefficients, intercept)."""
    from sklearn.linear_model import LogisticRegression

    if np.ptp(y) == 0:
        constant = float(np.clip(y[0], 1e-3, 1 - 1e-3))
        return np.zeros(x.shape[1]), float(np.log(constant / (1 - constant)))
    features = np.concatenate([x, x])
    targets = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weights = np.concatenate([y, 1.0 - y])
    keep = weights > 0
    model = LogisticRegression(C=c, max_iter=1000).fit(
        features[keep], targets[keep], sample_weight=weights[keep]
    )
    return model.coef_[0].astype(float), float(model.intercept_[0])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
