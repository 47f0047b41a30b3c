"""Input checks shared by the A/B tests: arrays of finite floats, NaNs dropped and counted (or
refused), infinities refused, and the common options (confidence, alternative) validated."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from orchestra.errors import AnalysisError

NanPolicy = Literal["drop", "raise"]
Alternative = Literal["two-sided", "less", "greater"]
ALTERNATIVES = ("two-sided", "less", "greater")


def as_array(data: Any, name: str) -> np.ndarray:
    """A flat float array; text or other non-numbers give an AnalysisError, not numpy's message."""
    try:
        return np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data, dtype=float).ravel()
    except (TypeError, ValueError) as err:
        raise AnalysisError(f"{name} must hold numbers ({err})") from err


def values(data: Any, name: str, nan_policy: NanPolicy = "drop") -> tuple[np.ndarray, int]:
    """A float array without NaN, and how many NaN were dropped (`raise` refuses them).

    Infinite values are always refused: a mean or variance over them is not a number.
    """
    array = as_array(data, name)
    missing = np.isnan(array)
    if missing.any() and nan_policy == "raise":
        raise AnalysisError(
            f"{name} has {int(missing.sum())} missing value(s) (pass nan_policy='drop' to drop them)"
        )
    kept = array[~missing]
    _finite(kept, name)
    return kept, int(missing.sum())


def pairs(a: Any, b: Any, nan_policy: NanPolicy = "drop") -> tuple[np.ndarray, np.ndarray, int]:
    """Two aligned arrays with every pair holding a NaN dropped (or refused)."""
    first, second = as_array(a, "arm A"), as_array(b, "arm B")
    if first.shape != second.shape:
        raise AnalysisError(f"a paired test needs equally long arms (got {first.size} and {second.size})")
    missing = np.isnan(first) | np.isnan(second)
    if missing.any() and nan_policy == "raise":
        raise AnalysisError(f"{int(missing.sum())} pair(s) hold a missing value (pass nan_policy='drop')")
    first, second = first[~missing], second[~missing]
    _finite(first, "arm A")
    _finite(second, "arm B")
    return first, second, int(missing.sum())


LARGEST = 1e150
"""Beyond this magnitude squares overflow and a variance becomes inf: such values are refused."""


def _finite(array: np.ndarray, name: str) -> None:
    if np.isinf(array).any():
        raise AnalysisError(f"{name} holds {int(np.isinf(array).sum())} infinite value(s); drop or cap them")
    if array.size and np.abs(array).max() > LARGEST:
        raise AnalysisError(
            f"{name} holds values beyond +-{LARGEST:g}; their variance overflows: rescale them"
        )


def need(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise AnalysisError(f"{what} needs at least {minimum} observation(s) per arm (got {n})")


def binary(array: np.ndarray, name: str) -> np.ndarray:
    if not np.isin(array, (0.0, 1.0)).all():
        raise AnalysisError(f"{name} must hold only 0 and 1 (or booleans) for a binary test")
    return array


def check_confidence(confidence: float) -> float:
    if not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise AnalysisError(f"confidence must lie strictly between 0 and 1 (got {confidence!r})")
    return float(confidence)


def check_alpha(alpha: float, name: str = "alpha") -> float:
    if not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise AnalysisError(f"{name} must lie strictly between 0 and 1 (got {alpha!r})")
    return float(alpha)


def check_alternative(alternative: str) -> Alternative:
    if alternative not in ALTERNATIVES:
        raise AnalysisError(f"alternative must be one of {', '.join(ALTERNATIVES)} (got {alternative!r})")
    return alternative  # type: ignore[return-value]


def check_count(value: Any, name: str, minimum: float = 0) -> float:
    """A finite number at least `minimum` (sample sizes, counts)."""
    if not isinstance(value, int | float | np.integer | np.floating) or not math.isfinite(value):
        raise AnalysisError(f"{name} must be a finite number (got {value!r})")
    if value < minimum:
        raise AnalysisError(f"{name} must be at least {minimum} (got {value!r})")
    return float(value)


def z_interval(
    estimate: float, se: float, confidence: float, alternative: Alternative = "two-sided"
) -> tuple[float, float, float]:
    """(p-value against 0, CI low, CI high) of a normal estimate; one-sided bounds are infinite.

    A zero standard error gives the exact answer: p = 1 at a zero estimate, 0 otherwise.
    """
    from scipy import stats

    if se == 0:
        if alternative == "two-sided":
            p = 1.0 if estimate == 0 else 0.0
        elif alternative == "greater":
            p = 0.0 if estimate > 0 else 1.0
        else:
            p = 0.0 if estimate < 0 else 1.0
        return p, estimate, estimate
    z = estimate / se
    if alternative == "two-sided":
        half = stats.norm.ppf(0.5 + confidence / 2) * se
        return float(2 * stats.norm.sf(abs(z))), estimate - half, estimate + half
    bound = stats.norm.ppf(confidence) * se
    if alternative == "greater":
        return float(stats.norm.sf(z)), estimate - bound, math.inf
    return float(stats.norm.cdf(z)), -math.inf, estimate + bound
