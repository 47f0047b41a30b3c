"""Any recorded table for the benchmarks (`--data PATH`): its columns, an offline config that
replays it, the training / evaluation halves, and the honest scoring every benchmark shares.

    data = load_recorded("data/gsm8k_routellm/responses.parquet")
    data.config, data.providers, data.strongest            # replay config; name -> model
    train, evaluate = data.halves()                         # by a hash of the prompt
    row = score_policy("cascade", picks, data, evaluate, best_single)

The two shipped datasets are recognised (AlpacaEval: `config.yaml`'s seven models and its judge
label; GSM8K: `config.gsm8k.yaml`); any other table needs prompt, model and output columns and
an optional quality column (`quality`, `correct`, `score`, or AlpacaEval's `preference`).
Unlabelled rows are kept (they are replayed) and left out of the scores, and counted; a replayed
empty answer is a failure: it scores 0 and is counted in the `failures` column.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from alpaca import ROOT
from scipy import stats

from orchestra.analysis.ab.means import paired_t
from orchestra.providers.pricing import PriceTable

SHIPPED = {
    (ROOT / "data" / "alpacaeval" / "responses.parquet").resolve(): ROOT / "config.yaml",
    (ROOT / "data" / "gsm8k_routellm" / "responses.parquet").resolve(): ROOT / "config.gsm8k.yaml",
}
PROMPT_COLUMNS = ("prompt", "instruction", "question")
QUALITY_COLUMNS = {"quality": 0.0, "correct": 0.0, "score": 0.0, "preference": -1.0}


@dataclass
class Recorded:
    """A recorded table: normalised rows (prompt, model, output, quality, group) and its config."""

    path: Path
    name: str
    rows: pl.DataFrame
    config: dict[str, Any]
    providers: dict[str, str]  # provider name in the config -> recorded model name
    reference_chars: dict[str, int] | None = None  # AlpacaEval: the judge's reference answer length

    @property
    def strongest(self) -> str:
        """The most expensive provider (the "strong" model of RouteLLM's pairs)."""
        prices = PriceTable.default()

        def price(name: str) -> float:
            found = prices.lookup(self.providers[name])
            return found.output_per_1m if found is not None else 0.0

        return max(self.providers, key=price)

    def prompts(self) -> list[str]:
        return self.rows["prompt"].unique(maintain_order=True).to_list()

    def groups(self) -> dict[str, str]:
        first = self.rows.unique("prompt", keep="first", maintain_order=True)
        return dict(zip(first["prompt"], first["group"].fill_null("general"), strict=True))

    def halves(self) -> tuple[list[str], list[str]]:
        """Training and evaluation prompts (a hash of the prompt decides)."""
        prompts = self.prompts()
        return [p for p in prompts if half(p) == 0], [p for p in prompts if half(p) == 1]

    def wide(self, prompts: list[str]) -> dict[str, dict[str, tuple[float | None, str]]]:
        """provider -> prompt -> (quality, answer)."""
        wanted = set(prompts)
        table: dict[str, dict[str, tuple[float | None, str]]] = {p: {} for p in self.providers}
        names = {m: p for p, m in self.providers.items()}
        for prompt, model, output, quality in self.rows.select(
            "prompt", "model", "output", "quality"
        ).iter_rows():
            if prompt in wanted and model in names:
                table[names[model]][prompt] = (quality, output or "")
        return table


def half(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 2


def load_recorded(path: str | Path | None = None) -> Recorded:
    """The recorded table at `path` (default: the shipped AlpacaEval data)."""
    source = Path(path or ROOT / "data" / "alpacaeval" / "responses.parquet").resolve()
    if source in SHIPPED:
        raw = yaml.safe_load(SHIPPED[source].read_text(encoding="utf-8"))
        (dataset,) = raw["datasets"].values()
        dataset["path"] = str(source)
        providers = {name: model["model"] for name, model in raw["models"].items()}
    else:
        frame = _read(source)
        prompt = next((c for c in PROMPT_COLUMNS if c in frame.columns), None)
        if prompt is None or "model" not in frame.columns or "output" not in frame.columns:
            raise SystemExit(
                f"{source}: need a prompt ({'/'.join(PROMPT_COLUMNS)}), a model and an output column"
            )
        quality = next((c for c in QUALITY_COLUMNS if c in frame.columns), None)
        dataset = {
            "path": str(source),
            "prompt_column": prompt,
            "model_column": "model",
            "output_column": "output",
        }
        if quality is not None:
            dataset |= {"quality_column": quality, "quality_offset": QUALITY_COLUMNS[quality]}
        if "dataset" in frame.columns:
            dataset["group_column"] = "dataset"
        models = sorted(m for m in frame["model"].unique().to_list() if m is not None)
        providers = {m.split("/")[-1].lower(): m for m in models}
        raw = {
            "datasets": {"data": dataset},
            "models": {p: {"type": "replay", "dataset": "data", "model": m} for p, m in providers.items()},
            "routing": {"rules": [{"providers": list(providers)}]},
        }
    frame = _read(source)
    offset = dataset.get("quality_offset", 0.0)
    quality_column = dataset.get("quality_column")
    rows = frame.select(
        pl.col(dataset.get("prompt_column", "prompt")).alias("prompt"),
        pl.col(dataset.get("model_column", "model")).alias("model"),
        pl.col(dataset.get("output_column", "output")).alias("output"),
        (
            pl.col(quality_column).cast(pl.Float64) + offset if quality_column else pl.lit(None, pl.Float64)
        ).alias("quality"),
        (
            pl.col(dataset["group_column"]).cast(pl.String)
            if dataset.get("group_column")
            else pl.lit(None, pl.String)
        ).alias("group"),
    )
    reference = None
    if "is_reference" in frame.columns:  # AlpacaEval: labels are preferences against this answer
        first = frame.filter(pl.col("is_reference")).unique(dataset["prompt_column"], keep="first")
        reference = dict(zip(first[dataset["prompt_column"]], first["output"].str.len_chars(), strict=True))
    return Recorded(source, source.parent.name, rows, raw, providers, reference)


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return pl.read_ndjson(path)
    return pl.read_csv(path)


@dataclass
class PolicyRow:
    """One policy's scores on the evaluation prompts."""

    name: str
    quality: float
    low: float
    high: float
    cost_per_1k: float | None
    difference: float  # paired, against the best single model chosen on the training split
    diff_low: float
    diff_high: float
    diff_p: float
    mean_chars: float
    failures: int
    unlabelled: int
    extra: str = ""
    length_controlled: tuple[float, float, float] | None = None  # AlpacaEval's LC win rate, CI


def score_policy(
    name: str,
    picks: dict[str, tuple[float | None, str, float | None]],
    baseline: dict[str, float | None],
    *,
    extra: str = "",
    chars: float | None = None,
    reference_chars: dict[str, int] | None = None,
) -> PolicyRow:
    """Score `picks` (prompt -> (quality, answer, cost)) against `baseline` (prompt -> quality of
    the best single model chosen on the training split), paired by prompt. An empty answer is a
    failure scoring 0; an unlabelled answer is left out (and counted). `chars` overrides the mean
    answer length (for an expectation over answers, which has no single answer)."""
    quality, reference, lengths, costs = [], [], [], []
    controlled: list[tuple[float, int, int]] = []
    failures = unlabelled = 0
    for prompt, (value, answer, cost) in picks.items():
        lengths.append(len(answer))
        if cost is not None:
            costs.append(cost)
        if not answer.strip():
            failures += 1
            value = 0.0
        if value is None or baseline.get(prompt) is None:
            unlabelled += 1
            continue
        quality.append(float(value))
        reference.append(float(baseline[prompt]))
        if reference_chars is not None and prompt in reference_chars:
            controlled.append((float(value), len(answer), reference_chars[prompt]))
    q = np.array(quality)
    mean, (low, high) = float(q.mean()), _interval(q)
    if np.allclose(q, reference):
        difference = (0.0, 0.0, 0.0, 1.0)
    else:
        test = paired_t(np.array(reference), q)
        difference = (
            test.effect,
            test.ci_low,
            test.ci_high,
            test.p_value if test.p_value is not None else math.nan,
        )
    length_controlled = None
    if controlled and chars is None:
        from orchestra.analysis.winrate import length_controlled_win_rate

        lc = length_controlled_win_rate(*zip(*controlled, strict=True))
        length_controlled = (lc.percent / 100, lc.low / 100, lc.high / 100)
    return PolicyRow(
        name,
        mean,
        low,
        high,
        1000.0 * float(np.mean(costs)) if costs else None,
        *difference,
        chars if chars is not None else float(np.mean(lengths)) if lengths else math.nan,
        failures,
        unlabelled,
        extra,
        length_controlled,
    )


def _interval(values: np.ndarray) -> tuple[float, float]:
    if values.size < 2 or values.std() == 0:
        return float(values.mean()), float(values.mean())
    low, high = stats.t.interval(0.95, values.size - 1, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high)


def print_table(rows: list[PolicyRow], *, quality_name: str, reference: str, prompts: int) -> None:
    versus = f"vs {reference} [95% CI]"
    controlled = any(r.length_controlled is not None for r in rows)
    print(
        f"{'policy':<44} {quality_name + ' [95% CI]':<24} {'$/1k req':>9} {versus:<34}"
        f" {'chars':>6} {'fail':>4} {'unlab':>5}"
        + (f"  {'LC win rate [95% CI]':<22}" if controlled else "")
        + "  notes"
    )
    for r in rows:
        cost = f"{r.cost_per_1k:9.3f}" if r.cost_per_1k is not None else f"{'':>9}"
        interval = f"[{100 * r.diff_low:+6.2f}, {100 * r.diff_high:+6.2f}]"
        difference = f"{100 * r.difference:+6.2f} {interval} p={r.diff_p:.2g}"
        lc = f"  {'':<22}" if controlled else ""
        if r.length_controlled is not None:
            value, low, high = (100 * v for v in r.length_controlled)
            lc = f"  {value:6.2f} [{low:5.2f}, {high:5.2f}]  "
        print(
            f"{r.name:<44} {100 * r.quality:6.2f} [{100 * r.low:5.2f}, {100 * r.high:5.2f}]    {cost} "
            f"{difference:<34} {r.mean_chars:6.0f} {r.failures:>4} {r.unlabelled:>5}{lc}  {r.extra}"
        )
    print(
        f"{prompts} evaluation prompts; quality and differences in points (x100); chars = mean answer length."
    )
