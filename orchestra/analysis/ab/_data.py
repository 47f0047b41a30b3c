"""Input checks shared by the A/B tests: arrays of floats, NaNs dropped and counted (or refused)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from orchestra.errors import AnalysisError

NanPolicy = Literal["drop", "raise"]


def values(data: Any, name: str, nan_policy: NanPolicy = "drop") -> tuple[np.ndarray, int]:
    """A float array without NaN, and how many NaN were dropped (`raise` refuses them)."""
    array = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data, dtype=float).ravel()
    missing = np.isnan(array)
    if missing.any() and nan_policy == "raise":
        raise AnalysisError(
            f"{name} has {int(missing.sum())} missing value(s) (pass nan_policy='drop' to drop them)"
        )
    return array[~missing], int(missing.sum())


def pairs(a: Any, b: Any, nan_policy: NanPolicy = "drop") -> tuple[np.ndarray, np.ndarray, int]:
    """Two aligned arrays with every pair holding a NaN dropped (or refused)."""
    first = np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a, dtype=float).ravel()
    second = np.asarray(b.to_numpy() if hasattr(b, "to_numpy") else b, dtype=float).ravel()
    if first.shape != second.shape:
        raise AnalysisError(f"a paired test needs equally long arms (got {first.size} and {second.size})")
    missing = np.isnan(first) | np.isnan(second)
    if missing.any() and nan_policy == "raise":
        raise AnalysisError(f"{int(missing.sum())} pair(s) hold a missing value (pass nan_policy='drop')")
    return first[~missing], second[~missing], int(missing.sum())


def need(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise AnalysisError(f"{what} needs at least {minimum} observation(s) per arm (got {n})")


def binary(array: np.ndarray, name: str) -> np.ndarray:
    if not np.isin(array, (0.0, 1.0)).all():
        raise AnalysisError(f"{name} must hold only 0 and 1 (or booleans) for a binary test")
    return array
