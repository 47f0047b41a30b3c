"""A full A/B report over logged requests: every arm against the control on every metric, with the
design inferred (paired when the same prompts went to every arm), methods chosen for the metric
kind and the sample size, and p-values adjusted together.

    report = ab_report(requests, arm="run_name", unit="prompt")
    report            # renders as a table in Jupyter
    report.log_to_mlflow(tracking, run_ids)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from orchestra.analysis.ab.means import paired_t, welch
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.proportions import mcnemar, two_proportion_z
from orchestra.analysis.ab.ratios import quantile_difference, ratio_difference
from orchestra.analysis.ab.result import ABReport, TestResult
from orchestra.analysis.ab.srm import sample_ratio_mismatch
from orchestra.errors import AnalysisError, OrchestraError
from orchestra.frames import as_frame

Kind = Literal["continuous", "binary", "ratio", "quantile"]
PAIRED_OVERLAP = 0.95


@dataclass(frozen=True)
class Metric:
    """What to compare: a column (continuous, binary, quantile) or a ratio of two columns."""

    name: str
    kind: Kind
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    q: float = 0.95
    log: bool = False

    def columns(self) -> list[str]:
        return [c for c in (self.column, self.numerator, self.denominator) if c is not None]


DEFAULT_METRICS = (
    Metric("quality", "continuous", "quality"),
    Metric("success", "binary", "success"),
    Metric("cost_per_success", "ratio", numerator="cost_usd", denominator="success"),
    Metric("p95_latency_ms", "quantile", "latency_ms", q=0.95),
)


def ab_report(
    frame: Any,
    *,
    arm: str = "run_name",
    unit: str | None = "prompt",
    metrics: Sequence[Metric] = DEFAULT_METRICS,
    control: str | None = None,
    design: Literal["auto", "paired", "independent"] = "auto",
    correction: str = "holm",
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> ABReport:
    """Compare every arm with `control` (default: the first arm in sorted order) on `metrics`."""
    data = as_frame(frame)
    if arm not in data.columns:
        raise AnalysisError(f"no arm column {arm!r}; the table has {data.columns}")
    if "success" not in data.columns and "status" in data.columns:
        data = data.with_columns((pl.col("status") == "ok").cast(pl.Float64).alias("success"))
    needed = {c for m in metrics for c in m.columns()}
    missing = needed - set(data.columns)
    if missing:
        raise AnalysisError(f"metric column(s) {sorted(missing)} are not in the table ({data.columns})")
    arms = sorted(data[arm].drop_nulls().unique().to_list(), key=str)
    if len(arms) < 2:
        raise AnalysisError(f"an A/B report needs at least two arms in {arm!r} (found {arms})")
    control = control if control is not None else arms[0]
    if control not in arms:
        raise AnalysisError(f"control arm {control!r} is not among {arms}")
    arm_index = _arm_index(data, arm, arms)
    unit_index = _unit_index(data, unit, design)
    paired, notes, shared = _design(arm_index, unit_index, len(arms), unit, design)
    counts = np.bincount(arm_index[arm_index >= 0], minlength=len(arms))
    srm = sample_ratio_mismatch({str(a): int(c) for a, c in zip(arms, counts, strict=True)})
    if not paired:
        notes.append(srm.verdict)
    columns = sorted(needed)
    per_arm = _per_arm(data, columns, arms, arm_index, unit_index if paired else None, shared)
    results: list[TestResult] = []
    for metric in metrics:
        for treatment in (a for a in arms if a != control):
            try:
                result = _compare(
                    metric, per_arm[control], per_arm[treatment], control, treatment, paired, confidence
                )
            except OrchestraError as err:  # one metric's failure must not hide the others
                result = TestResult.not_computable(
                    metric.name, str(control), str(treatment), _METHODS[metric.kind], err.message
                )
            results.append(result)
    results = [replace(r, alpha=alpha) for r in adjust(results, correction)]
    computable = sum(r.computable for r in results)
    notes.append(f"p-values adjusted together ({correction}) over {computable} comparisons.")
    skipped = len(results) - computable
    if skipped:
        notes.append(f"{skipped} comparison(s) not computable; see their warnings.")
    return ABReport(results, notes)


_METHODS = {
    "continuous": "t-test",
    "binary": "test of proportions",
    "ratio": "delta method",
    "quantile": "quantile comparison",
}


def _arm_index(data: pl.DataFrame, arm: str, arms: list[Any]) -> np.ndarray:
    """Each row's position in `arms` (-1 for a missing arm)."""
    column = data[arm]
    index = np.full(data.height, -1, dtype=np.int64)
    for position, name in enumerate(arms):
        index[(column == name).fill_null(False).to_numpy()] = position
    return index


def _unit_index(data: pl.DataFrame, unit: str | None, design: str) -> np.ndarray | None:
    """Dense unit codes 0..U-1 in sorted unit order (-1 for a missing unit), or None."""
    if design == "independent" or unit is None or unit not in data.columns:
        return None
    codes = data.select(pl.col(unit).rank("dense")).to_series()
    return (codes.fill_null(0).to_numpy().astype(np.int64)) - 1


def _design(
    arm_index: np.ndarray, unit_index: np.ndarray | None, n_arms: int, unit: str | None, design: str
) -> tuple[bool, list[str], np.ndarray | None]:
    """(paired?, notes, which units every arm has) from the units' overlap between arms."""
    if unit_index is None:
        return False, ["design: independent samples"], None
    valid = (arm_index >= 0) & (unit_index >= 0)
    units = int(unit_index.max()) + 1 if valid.any() else 0
    rows = np.bincount(arm_index[valid] * units + unit_index[valid], minlength=n_arms * units)
    present = rows.reshape(n_arms, units) > 0
    seen = present.any(axis=0)
    shared = present.all(axis=0)
    overlap = shared.sum() / max(int(seen.sum()), 1)
    if design == "paired" or overlap >= PAIRED_OVERLAP:
        if not shared.any():
            raise AnalysisError(f"a paired design needs units present in every arm; no {unit!r} is")
        note = f"design: paired by {unit!r} ({int(shared.sum())} units in every arm, overlap {overlap:.1%})"
        return True, [note], shared
    return False, [f"design: independent samples ({unit!r} overlap between arms is only {overlap:.1%})"], None


def _per_arm(
    data: pl.DataFrame,
    columns: list[str],
    arms: list[Any],
    arm_index: np.ndarray,
    unit_index: np.ndarray | None,
    shared: np.ndarray | None,
) -> dict[Any, dict[str, np.ndarray]]:
    """Per arm, each column as an array: the mean per shared unit, in unit order (paired; missing
    values ignored within a unit), or every row (independent)."""
    arrays = {c: data[c].cast(pl.Float64).to_numpy() for c in columns}
    if unit_index is None or shared is None:
        return {
            name: {c: values[arm_index == position] for c, values in arrays.items()}
            for position, name in enumerate(arms)
        }
    units = shared.size
    valid = (arm_index >= 0) & (unit_index >= 0)
    key = arm_index[valid] * units + unit_index[valid]
    means = {}
    for c, values in arrays.items():
        column = values[valid]
        finite = ~np.isnan(column)
        sums = np.bincount(key[finite], weights=column[finite], minlength=len(arms) * units)
        counts = np.bincount(key[finite], minlength=len(arms) * units)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[c] = (sums / counts).reshape(len(arms), units)[:, shared]
    return {name: {c: means[c][position] for c in columns} for position, name in enumerate(arms)}


def _compare(
    metric: Metric,
    a: dict[str, np.ndarray],
    b: dict[str, np.ndarray],
    arm_a: Any,
    arm_b: Any,
    paired: bool,
    confidence: float,
) -> TestResult:
    names = {"metric": metric.name, "arm_a": str(arm_a), "arm_b": str(arm_b), "confidence": confidence}
    if metric.kind == "continuous":
        test = paired_t if paired else welch
        return test(a[metric.column], b[metric.column], **names)
    if metric.kind == "binary":
        x, y = a[metric.column], b[metric.column]
        if paired and np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all():
            return mcnemar(x, y, **names)
        if paired:  # several requests per unit: per-unit success rates, compared as means
            return paired_t(x, y, **names)
        return two_proportion_z(x, y, **names)
    if metric.kind == "ratio":
        return ratio_difference(
            a[metric.numerator],
            a[metric.denominator],
            b[metric.numerator],
            b[metric.denominator],
            paired=paired,
            **names,
        )
    return quantile_difference(
        a[metric.column], b[metric.column], q=metric.q, paired=paired, log=metric.log, **names
    )
