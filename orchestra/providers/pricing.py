"""Per-model prices from a data file (USD per 1M tokens), overridable in config.

table = PriceTable.default()
table.cost("gpt-4", input_tokens=1_000, output_tokens=500)  # 0.06
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orchestra.errors import ConfigError

_TOKENS_PER_UNIT = 1_000_000


@dataclass(frozen=True)
class Price:
    """Prices of one model in USD per 1M tokens, with where and when they were read."""

    model: str
    input_per_1m: float
    output_per_1m: float
    cached_input_per_1m: float | None = None
    cache_write_per_1m: float | None = None
    as_of: str = ""
    source: str = ""

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """USD for one call. `input_tokens` includes the cached and cache-write ones."""
        cached_rate = self.cached_input_per_1m if self.cached_input_per_1m is not None else self.input_per_1m
        write_rate = self.cache_write_per_1m if self.cache_write_per_1m is not None else self.input_per_1m
        plain_input = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        total = (
            plain_input * self.input_per_1m
            + cached_input_tokens * cached_rate
            + cache_write_tokens * write_rate
            + output_tokens * self.output_per_1m
        )
        return total / _TOKENS_PER_UNIT


class PriceTable:
    """Model name (or alias) -> `Price`."""

    def __init__(self, prices: list[Price], aliases: dict[str, str] | None = None) -> None:
        self._prices = {price.model: price for price in prices}
        self._aliases = dict(aliases or {})

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped with orchestra (`orchestra/data/prices.csv`)."""
        source = resources.files("orchestra.data").joinpath("prices.csv")
        with resources.as_file(source) as path:
            return cls.from_csv(path)

    @classmethod
    def from_csv(cls, path: str | Path) -> PriceTable:
        """Read a CSV with columns model, input_per_1m, output_per_1m and optional extras."""
        prices, aliases = [], {}
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    price = Price(
                        model=row["model"],
                        input_per_1m=float(row["input_per_1m"]),
                        output_per_1m=float(row["output_per_1m"]),
                        cached_input_per_1m=_optional_float(row.get("cached_input_per_1m")),
                        cache_write_per_1m=_optional_float(row.get("cache_write_per_1m")),
                        as_of=row.get("as_of", "") or "",
                        source=row.get("source", "") or "",
                    )
                    prices.append(price)
                    for alias in filter(None, (row.get("aliases") or "").split("|")):
                        aliases[alias] = price.model
        except (OSError, KeyError, ValueError) as err:
            raise ConfigError(f"price table {path}: {err}") from err
        return cls(prices, aliases)

    def with_overrides(self, overrides: dict[str, Price]) -> PriceTable:
        """A copy where `overrides` replace (or add) the prices of the named models."""
        merged = dict(self._prices)
        merged.update(overrides)
        aliases = {a: m for a, m in self._aliases.items() if a not in overrides}
        return PriceTable(list(merged.values()), aliases)

    def lookup(self, model: str) -> Price | None:
        """The price of `model` or one of its aliases, or None when the table does not know it."""
        return self._prices.get(model) or self._prices.get(self._aliases.get(model, ""))

    def cost(self, model: str, input_tokens: int, output_tokens: int, **cached: int) -> float | None:
        """USD for one call, or None when the model is not priced."""
        price = self.lookup(model)
        return None if price is None else price.cost(input_tokens, output_tokens, **cached)

    def models(self) -> list[str]:
        return sorted(self._prices)


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None
