"""Variance reduction with a pre-experiment covariate: CUPED (Deng, Xu, Kohavi & Walker, 2013,
"Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data",
WSDM) and regression adjustment with treatment-covariate interactions (Lin, 2013, Annals of
Applied Statistics 7(1):295-318). For LLM evaluation the covariate is something known before the
comparison: a prompt's difficulty from other models' judge labels, its length, an earlier score.
Never use an outcome of the arms being compared.

    cuped(quality_a, quality_b, difficulty_a, difficulty_b)              # two independent arms
    cuped(quality_a, quality_b, difficulty, paired=True)                 # same prompts in both
    regression_adjustment(quality_a, quality_b, features_a, features_b)  # several covariates

Conventions. CUPED: theta = cov(Y, X) / var(X) over both arms pooled, Y_cv = Y - theta (X - mean
X), then Welch's t-test (paired: the per-unit differences are adjusted, then a paired t-test).
The pooled variance reduction is exactly rho^2 (Deng et al., 2013, eq. 4); the reduction that
matters, of the effect's squared standard error, is reported as `details["variance_reduction"]`.
Regression adjustment: OLS of Y on 1, T, X - mean(X), T (X - mean(X)) with HC2 standard errors
(Lin's estimator; statsmodels); the effect is the coefficient of T, normal interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from orchestra.analysis.ab._data import (
    Alternative,
    as_array,
    check_alternative,
    check_confidence,
    need,
    z_interval,
)
from orchestra.analysis.ab.means import _names, paired_t, welch
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError


def _complete(outcome: Any, covariate: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    y, x = as_array(outcome, f"{name} outcome"), as_array(covariate, f"{name} covariate")
    if y.size != x.size:
        raise AnalysisError(
            f"{name}: outcome and covariate need one value per unit each ({y.size} vs {x.size})"
        )
    keep = np.isfinite(y) & np.isfinite(x)
    return y[keep], x[keep]


def cuped(
    a: Any,
    b: Any,
    covariate_a: Any,
    covariate_b: Any | None = None,
    *,
    paired: bool = False,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    **names: Any,
) -> TestResult:
    """CUPED-adjusted comparison of mean(B) - mean(A); rows with a missing value are dropped.

    Paired designs take one covariate per unit (`covariate_a`) and adjust the differences B - A.
    """
    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    options = {"alternative": alternative, "confidence": confidence, **_names(names)}
    if paired:
        y_a, y_b, x = as_array(a, "arm A"), as_array(b, "arm B"), as_array(covariate_a, "covariate")
        if not y_a.size == y_b.size == x.size:
            raise AnalysisError(
                "a paired CUPED needs one value per unit in each arm and one covariate per unit"
            )
        keep = np.isfinite(y_a) & np.isfinite(y_b) & np.isfinite(x)
        y_a, y_b, x = y_a[keep], y_b[keep], x[keep]
        need(x.size, 3, "a paired CUPED")
        difference = y_b - y_a
        theta = _theta(difference, x)
        adjusted = difference - theta * (x - x.mean())
        raw = paired_t(y_a, y_b, **options)
        result = paired_t(np.zeros_like(adjusted), adjusted, **options)
        pooled = (difference, adjusted)
        se_raw, se_adjusted = _se(difference), _se(adjusted)
        estimates = (float(y_a.mean()), float(y_b.mean()))
    else:
        if covariate_b is None:
            raise AnalysisError("independent arms need a covariate for each arm (covariate_b)")
        y_a, x_a = _complete(a, covariate_a, "arm A")
        y_b, x_b = _complete(b, covariate_b, "arm B")
        need(min(y_a.size, y_b.size), 2, "CUPED")
        y, x = np.concatenate([y_a, y_b]), np.concatenate([x_a, x_b])
        theta = _theta(y, x)
        centre = x.mean()
        adjusted_a, adjusted_b = y_a - theta * (x_a - centre), y_b - theta * (x_b - centre)
        raw = welch(y_a, y_b, **options)
        result = welch(adjusted_a, adjusted_b, **options)
        pooled = (y, np.concatenate([adjusted_a, adjusted_b]))
        se_raw = math.hypot(_se(y_a), _se(y_b))
        se_adjusted = math.hypot(_se(adjusted_a), _se(adjusted_b))
        estimates = (float(adjusted_a.mean()), float(adjusted_b.mean()))
    reduction = 1 - (se_adjusted / se_raw) ** 2 if se_raw > 0 else 0.0
    return TestResult(
        **{
            **result.__dict__,
            "method": f"CUPED ({result.method})",
            "estimate_a": estimates[0],
            "estimate_b": estimates[1],
            "details": {
                **result.details,
                "theta": theta,
                "variance_reduction": reduction,
                "pooled_variance_reduction": 1 - float(np.var(pooled[1]) / np.var(pooled[0])),
                "unadjusted_ci": (raw.ci_low, raw.ci_high),
                "unadjusted_p_value": raw.p_value,
            },
        }
    )


def _theta(y: np.ndarray, x: np.ndarray) -> float:
    variance = float(np.var(x))
    if variance == 0:
        raise AnalysisError("the covariate is constant: it cannot reduce any variance")
    return float(np.mean((x - x.mean()) * (y - y.mean())) / variance)


def _se(sample: np.ndarray) -> float:
    """The standard error of a sample's mean."""
    return float(np.std(sample, ddof=1) / math.sqrt(sample.size))


def regression_adjustment(
    a: Any,
    b: Any,
    covariates_a: Any,
    covariates_b: Any,
    *,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    **names: Any,
) -> TestResult:
    """Lin's (2013) interacted regression adjustment with HC2 errors; one or more covariates."""
    from statsmodels.regression.linear_model import OLS  # lazy: statsmodels is slow to import

    alternative = check_alternative(alternative)
    confidence = check_confidence(confidence)
    y_a, y_b = as_array(a, "arm A"), as_array(b, "arm B")
    x_a = np.asarray(covariates_a, dtype=float).reshape(y_a.size, -1)
    x_b = np.asarray(covariates_b, dtype=float).reshape(y_b.size, -1)
    if x_a.shape[1] != x_b.shape[1]:
        raise AnalysisError("both arms need the same covariates")
    keep_a = np.isfinite(y_a) & np.isfinite(x_a).all(axis=1)
    keep_b = np.isfinite(y_b) & np.isfinite(x_b).all(axis=1)
    y_a, x_a, y_b, x_b = y_a[keep_a], x_a[keep_a], y_b[keep_b], x_b[keep_b]
    need(min(y_a.size, y_b.size), x_a.shape[1] + 2, "regression adjustment")
    y = np.concatenate([y_a, y_b])
    treated = np.r_[np.zeros(y_a.size), np.ones(y_b.size)]
    centred = np.vstack([x_a, x_b]) - np.vstack([x_a, x_b]).mean(axis=0)
    design = np.column_stack([np.ones_like(y), treated, centred, treated[:, None] * centred])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise AnalysisError("the covariates are constant or collinear within an arm")
    fit = OLS(y, design).fit(cov_type="HC2")
    unadjusted = OLS(y, design[:, :2]).fit(cov_type="HC2")
    effect, se = float(fit.params[1]), float(fit.bse[1])
    se_raw = float(unadjusted.bse[1])
    p, low, high = z_interval(effect, se, confidence, alternative)
    return TestResult(
        method="regression adjustment (Lin 2013, HC2)",
        n_a=y_a.size,
        n_b=y_b.size,
        estimate_a=float(fit.params[0]),
        estimate_b=float(fit.params[0] + effect),
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        confidence=confidence,
        alternative=alternative,
        details={
            "se": se,
            "unadjusted_se": se_raw,
            "variance_reduction": 1 - (se / se_raw) ** 2 if se_raw > 0 else 0.0,
        },
        **_names(names),
    )
