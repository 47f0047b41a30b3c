"""Full-information outcomes: every provider's quality, cost and answer on the same prompts.

    outcomes = Outcomes.from_table(table)        # long: prompt, provider, quality, cost_usd[, output]
    outcomes.subset(prompts).routed(columns)     # quality and cost of one choice per prompt

An exploration run (or a recorded dataset) gives this; on it any router or cascade can be scored
exactly, which is how trade-offs are calibrated and candidates compared offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from orchestra.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Outcomes:
    """Wide matrices, one row per prompt and one column per provider (NaN / None where missing)."""

    prompts: list[str]
    providers: list[str]
    quality: np.ndarray
    cost: np.ndarray
    outputs: list[list[str | None]]

    @classmethod
    def from_table(cls, table: pl.DataFrame, providers: list[str] | None = None) -> Outcomes:
        """From a long table; repeated (prompt, provider) rows are averaged (the first output kept)."""
        import polars as pl

        missing = {"prompt", "provider", "quality"} - set(table.columns)
        if missing:
            raise ConfigError(f"the outcome table lacks columns {sorted(missing)}")
        frame = table
        if "cost_usd" not in frame.columns:
            frame = frame.with_columns(pl.lit(0.0).alias("cost_usd"))
        if "output" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("output"))
        names = providers or sorted(frame["provider"].unique().to_list())
        means = frame.group_by("prompt", "provider", maintain_order=True).agg(
            pl.col("quality").mean(), pl.col("cost_usd").mean(), pl.col("output").first()
        )
        prompts = means["prompt"].unique(maintain_order=True).to_list()
        index = {p: i for i, p in enumerate(prompts)}
        column = {p: j for j, p in enumerate(names)}
        quality = np.full((len(prompts), len(names)), np.nan)
        cost = np.full_like(quality, np.nan)
        outputs: list[list[str | None]] = [[None] * len(names) for _ in prompts]
        for prompt, provider, q, c, output in means.select(
            "prompt", "provider", "quality", "cost_usd", "output"
        ).iter_rows():
            if provider not in column:
                continue
            i, j = index[prompt], column[provider]
            quality[i, j] = np.nan if q is None else q
            cost[i, j] = np.nan if c is None else c
            outputs[i][j] = output
        return cls(prompts, list(names), quality, cost, outputs)

    def subset(self, prompts: list[str]) -> Outcomes:
        """These prompts, in this order (each must be known)."""
        index = {p: i for i, p in enumerate(self.prompts)}
        unknown = [p for p in prompts if p not in index]
        if unknown:
            raise ConfigError(f"{len(unknown)} prompt(s) have no recorded outcomes, e.g. {unknown[0][:60]!r}")
        rows = [index[p] for p in prompts]
        return Outcomes(
            list(prompts),
            self.providers,
            self.quality[rows],
            self.cost[rows],
            [self.outputs[i] for i in rows],
        )

    def column(self, provider: str) -> int:
        return self.providers.index(provider)

    def routed(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt quality and cost when prompt i is answered by provider `columns[i]`."""
        rows = np.arange(len(self.prompts))
        return self.quality[rows, columns], self.cost[rows, columns]

    def __len__(self) -> int:
        return len(self.prompts)
