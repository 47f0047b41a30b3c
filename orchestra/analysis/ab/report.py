"""A full A/B report over logged requests: every arm against the control on every metric, with the
design inferred (paired when the same prompts went to every arm), methods chosen for the metric
kind and the sample size, and p-values adjusted together.

    report = ab_report(requests, arm="run_name", unit="prompt")
    report            # renders as a table in Jupyter
    report.log_to_mlflow(tracking, run_ids)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from orchestra.analysis.ab.means import paired_t, welch
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.proportions import mcnemar, two_proportion_z
from orchestra.analysis.ab.ratios import quantile_difference, ratio_difference
from orchestra.analysis.ab.result import ABReport, TestResult
from orchestra.analysis.ab.srm import sample_ratio_mismatch
from orchestra.errors import AnalysisError
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
    paired, notes = _design(data, arm, unit, arms, design)
    counts = data.group_by(arm).len()
    srm = sample_ratio_mismatch(
        dict(zip(counts[arm].cast(pl.String).to_list(), counts["len"].to_list(), strict=True))
    )
    if not paired:
        notes.append(srm.verdict)
    columns = sorted(needed)
    per_arm = _per_arm(data, arm, unit, columns, paired)
    results: list[TestResult] = []
    for metric in metrics:
        for treatment in (a for a in arms if a != control):
            results.append(
                _compare(metric, per_arm[control], per_arm[treatment], control, treatment, paired, confidence)
            )
    results = [TestResult(**{**r.__dict__, "alpha": alpha}) for r in adjust(results, correction)]
    notes.append(f"p-values adjusted together ({correction}) over {len(results)} comparisons.")
    return ABReport(results, notes)


def _design(
    data: pl.DataFrame, arm: str, unit: str | None, arms: list[str], design: str
) -> tuple[bool, list[str]]:
    if design == "independent" or unit is None or unit not in data.columns:
        return False, ["design: independent samples"]
    units = data.group_by(arm).agg(pl.col(unit).unique())
    sets = [set(values) for values in units[unit].to_list()]
    common, union = set.intersection(*sets), set.union(*sets)
    overlap = len(common) / max(len(union), 1)
    if design == "paired" or overlap >= PAIRED_OVERLAP:
        if not common:
            raise AnalysisError(f"a paired design needs units present in every arm; no {unit!r} is")
        return True, [f"design: paired by {unit!r} ({len(common)} units in every arm, overlap {overlap:.1%})"]
    return False, [f"design: independent samples ({unit!r} overlap between arms is only {overlap:.1%})"]


def _per_arm(
    data: pl.DataFrame, arm: str, unit: str | None, columns: list[str], paired: bool
) -> dict[Any, dict[str, np.ndarray]]:
    """Per arm, each column as an array: one value per shared unit (paired) or per row."""
    if paired:
        assert unit is not None
        means = data.group_by([arm, unit]).agg([pl.col(c).cast(pl.Float64).mean() for c in columns])
        shared = means.group_by(unit).len().filter(pl.col("len") == means[arm].n_unique())[unit]
        means = means.filter(pl.col(unit).is_in(shared.implode())).sort([arm, unit])
        parts = means.partition_by(arm, as_dict=True)
    else:
        parts = data.select([arm, *columns]).partition_by(arm, as_dict=True)
    return {key[0]: {c: part[c].cast(pl.Float64).to_numpy() for c in columns} for key, part in parts.items()}


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
