"""The small object every A/B test returns, and the report that collects them.

result.effect, result.ci, result.p_value, result.verdict
report = ABReport([result, ...]); report.table; report.log_to_mlflow(tracking, run_ids)
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import polars as pl


@dataclass(frozen=True)
class TestResult:
    """One comparison: B against A on one metric.

    `effect` is B minus A (or the ratio/odds, as `effect_kind` says) with its confidence interval;
    `p_value` is raw, `p_adjusted` after a multiple-comparison correction (when one was applied).
    `alternative` is "two-sided", "greater" (B > A) or "less"; one-sided intervals have an infinite
    end. `warnings` says when an interval is degenerate or its true level differs from
    `confidence`; a comparison the data cannot support has `computable=False` and NaN numbers.
    """

    __test__ = False  # not a pytest test class

    metric: str
    method: str
    arm_a: str
    arm_b: str
    n_a: int
    n_b: int
    estimate_a: float
    estimate_b: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float | None
    effect_kind: str = "difference"
    confidence: float = 0.95
    p_adjusted: float | None = None
    adjustment: str | None = None
    alpha: float = 0.05
    details: dict[str, Any] = field(default_factory=dict)
    alternative: str = "two-sided"
    warnings: tuple[str, ...] = ()
    computable: bool = True

    @classmethod
    def not_computable(cls, metric: str, arm_a: str, arm_b: str, method: str, reason: str) -> TestResult:
        """A placeholder for a comparison the data cannot support, carrying the reason."""
        nan = float("nan")
        return cls(
            metric=metric,
            method=method,
            arm_a=arm_a,
            arm_b=arm_b,
            n_a=0,
            n_b=0,
            estimate_a=nan,
            estimate_b=nan,
            effect=nan,
            ci_low=nan,
            ci_high=nan,
            p_value=None,
            warnings=(f"not computable: {reason}",),
            computable=False,
        )

    @property
    def ci(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    @property
    def significant(self) -> bool:
        if not self.computable:
            return False
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        if p is not None and not math.isnan(p):
            return p < self.alpha
        null = 1.0 if self.effect_kind in ("ratio", "odds_ratio") else 0.0
        return not (self.ci_low <= null <= self.ci_high)

    @property
    def verdict(self) -> str:
        """One plain-English line (plus any warning about the interval)."""
        if not self.computable:
            return f"{self.metric}: {self.arm_b} vs {self.arm_a} is {self.warnings[0]}."
        warning = "".join(f" Warning: {w}." for w in self.warnings)
        return self._finding() + warning

    def _finding(self) -> str:
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        p_text = "" if p is None else f", p{'(adj)' if self.p_adjusted is not None else ''}={_fmt(p)}"
        unadjusted = "unadjusted " if self.p_adjusted is not None else ""
        ci_text = f"{unadjusted}{self.confidence:.0%} CI [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}]"
        if math.isnan(self.ci_low) and math.isnan(self.ci_high):
            ci_text = "no interval"
        if self.significant:
            direction = (
                "higher"
                if self.effect > (1.0 if self.effect_kind in ("ratio", "odds_ratio") else 0.0)
                else "lower"
            )
            return (
                f"{self.arm_b} has {direction} {self.metric} than {self.arm_a} "
                f"({self.effect_kind} {_fmt(self.effect)}, {ci_text}{p_text}; {self.method})."
            )
        return (
            f"No detectable difference in {self.metric} between {self.arm_b} and {self.arm_a} "
            f"({self.effect_kind} {_fmt(self.effect)}, {ci_text}{p_text}; {self.method})."
        )

    def adjusted(self, p_adjusted: float, method: str) -> TestResult:
        return replace(self, p_adjusted=p_adjusted, adjustment=method)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"verdict": self.verdict, "significant": self.significant}

    def _repr_html_(self) -> str:
        return ABReport([self])._repr_html_()


_COLUMNS = [
    "metric",
    "arm_a",
    "arm_b",
    "n_a",
    "n_b",
    "estimate_a",
    "estimate_b",
    "effect_kind",
    "effect",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "method",
    "significant",
    "computable",
    "warnings",
    "verdict",
]


@dataclass
class ABReport:
    """Several results, e.g. every arm against the control on every metric, adjusted together."""

    results: list[TestResult]
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> pl.DataFrame:
        rows = [
            {k: r.as_dict()[k] for k in _COLUMNS} | {"warnings": "; ".join(r.warnings)} for r in self.results
        ]
        return pl.DataFrame(rows, schema_overrides={"p_value": pl.Float64, "p_adjusted": pl.Float64})

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __str__(self) -> str:
        return "\n".join([*(r.verdict for r in self.results), *self.notes])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in _COLUMNS[:-1])
        body = ""
        for r in self.results:
            values = r.as_dict()
            cells = "".join(f"<td>{html.escape(_fmt(values[c]))}</td>" for c in _COLUMNS[:-1])
            style = ' style="font-weight:bold"' if r.significant else ""
            verdict = f"<tr><td colspan='{len(_COLUMNS) - 1}'><i>{html.escape(r.verdict)}</i></td></tr>"
            body += f"<tr{style}>{cells}</tr>{verdict}"
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"

    def to_json(self) -> str:
        return json.dumps(
            {"results": [r.as_dict() for r in self.results], "notes": self.notes}, default=str, indent=2
        )

    def log_to_mlflow(self, tracking: Any, run_ids: list[str], name: str = "ab_report") -> None:
        """Metrics (effect, CI, p-values) and the report as JSON and HTML artifacts on each run."""
        from orchestra.tracking.store import MlflowStore

        store = MlflowStore(tracking)
        metrics = {}
        for r in self.results:
            key = f"ab.{_slug(r.metric)}.{_slug(r.arm_b)}_vs_{_slug(r.arm_a)}"
            metrics |= {f"{key}.effect": r.effect, f"{key}.ci_low": r.ci_low, f"{key}.ci_high": r.ci_high}
            if r.p_value is not None:
                metrics[f"{key}.p_value"] = r.p_value
            if r.p_adjusted is not None:
                metrics[f"{key}.p_adjusted"] = r.p_adjusted
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / f"{name}.json").write_text(self.to_json(), encoding="utf-8")
            (Path(folder) / f"{name}.html").write_text(
                f"<html><body>{self._repr_html_()}</body></html>", "utf-8"
            )
            for run_id in run_ids:
                store.log_metrics(run_id, {k: v for k, v in metrics.items() if _finite(v)})
                store.log_artifact_file(run_id, Path(folder) / f"{name}.json", "analysis")
                store.log_artifact_file(run_id, Path(folder) / f"{name}.html", "analysis")


def _finite(value: float) -> bool:
    return value is not None and not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))[:60]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4g}"
    return str(value)
