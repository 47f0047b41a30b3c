"""Heterogeneous effects: does B's advantage over A depend on the segment (task type, dataset
subset, complexity)? The treatment x segment interaction test, and per-segment effects with
multiplicity control.

    interaction_test(frame, outcome="quality", arm="run_name", segment="task_type")
    segment_effects(frame, outcome="quality", arm="run_name", segment="task_type", correction="holm")

Conventions. The interaction test compares the OLS models y ~ arm + segment and y ~ arm * segment
with the classical F-test (statsmodels `compare_f_test`; R's `anova(additive, interacted)`), which
assumes a common residual variance. Per-segment effects are Welch t-tests of B - A within each
segment, Holm- (family-wise) or BH- (false discovery rate) adjusted across segments; a segment
where an arm has fewer than two rows is reported as not computable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from orchestra.analysis.ab.ksample import KSampleResult
from orchestra.analysis.ab.means import welch
from orchestra.analysis.ab.multiple import adjust
from orchestra.analysis.ab.result import TestResult
from orchestra.errors import AnalysisError, OrchestraError
from orchestra.frames import as_frame


def _prepare(
    frame: Any, outcome: str, arm: str, segment: str, control: Any | None
) -> tuple[pl.DataFrame, Any, Any]:
    data = as_frame(frame)
    missing = {outcome, arm, segment} - set(data.columns)
    if missing:
        raise AnalysisError(f"column(s) {sorted(missing)} are not in the table ({data.columns})")
    data = (
        data.select(pl.col(outcome).cast(pl.Float64), pl.col(arm), pl.col(segment).cast(pl.String))
        .drop_nulls()
        .filter(pl.col(outcome).is_finite())
    )
    arms = sorted(data[arm].unique().to_list(), key=str)
    if len(arms) != 2:
        raise AnalysisError(f"a segment analysis compares exactly two arms (found {arms})")
    control = arms[0] if control is None else control
    if control not in arms:
        raise AnalysisError(f"control arm {control!r} is not among {arms}")
    treatment = arms[1] if arms[0] == control else arms[0]
    return data, control, treatment


def interaction_test(
    frame: Any, *, outcome: str, arm: str, segment: str, control: Any | None = None
) -> KSampleResult:
    """F-test that the B - A effect is the same in every segment (no treatment x segment term)."""
    from statsmodels.regression.linear_model import OLS  # lazy: statsmodels is slow to import

    data, control, _ = _prepare(frame, outcome, arm, segment, control)
    segments = sorted(data[segment].unique().to_list())
    if len(segments) < 2:
        raise AnalysisError("an interaction test needs at least two segments")
    y = data[outcome].to_numpy()
    treated = (data[arm] != control).cast(pl.Float64).to_numpy()
    labels = data[segment].to_numpy()
    dummies = np.column_stack([(labels == s).astype(float) for s in segments[1:]])
    additive = np.column_stack([np.ones_like(y), treated, dummies])
    full = np.column_stack([additive, treated[:, None] * dummies])
    if np.linalg.matrix_rank(full) < full.shape[1] or y.size <= full.shape[1]:
        raise AnalysisError("every segment needs rows from both arms (and more rows than parameters)")
    fit, restricted = OLS(y, full).fit(), OLS(y, additive).fit()
    statistic, p_value, df = fit.compare_f_test(restricted)
    return KSampleResult(
        method="F-test of the treatment x segment interaction",
        statistic=float(statistic),
        df=float(df),
        p_value=float(p_value),
        details={"segments": segments, "df_residual": float(fit.df_resid)},
    )


def segment_effects(
    frame: Any,
    *,
    outcome: str,
    arm: str,
    segment: str,
    control: Any | None = None,
    correction: str = "holm",
    confidence: float = 0.95,
) -> list[TestResult]:
    """B - A within each segment (Welch), adjusted together; `metric` names the segment."""
    data, control, treatment = _prepare(frame, outcome, arm, segment, control)
    results = []
    for name in sorted(data[segment].unique().to_list()):
        part = data.filter(pl.col(segment) == name)
        label = {"metric": f"{outcome} [{segment}={name}]", "arm_a": str(control), "arm_b": str(treatment)}
        a = part.filter(pl.col(arm) == control)[outcome]
        b = part.filter(pl.col(arm) == treatment)[outcome]
        try:
            results.append(welch(a, b, confidence=confidence, **label))
        except OrchestraError as err:
            results.append(TestResult.not_computable(method="Welch's t-test", reason=err.message, **label))
    return adjust(results, correction)
