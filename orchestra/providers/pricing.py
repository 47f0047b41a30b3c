"""Per-model prices (USD per 1M tokens): config overrides, then the maintained genai-prices
catalogue, then the project's dated rows for recorded models the catalogue lacks.

table = PriceTable.default()
table.cost("gpt-4", input_tokens=1_000, output_tokens=500)  # 0.06
table.lookup("gpt4", on=date(2024, 1, 9))                    # a recording's name and date
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path

from orchestra.errors import ConfigError

_TOKENS_PER_UNIT = 1_000_000

CORRECTS = "corrects"
"""`catalogue` column value of a row that wins over the catalogue's (wrong) price for its model."""


@dataclass(frozen=True)
class Price:
    """Fixed prices of one model in USD per 1M tokens, with where and when they were read."""

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
        reasoning_tokens: int = 0,
        at: datetime | None = None,
    ) -> float:
        """USD for one call. `input_tokens` includes the cached and cache-write ones and
        `output_tokens` the reasoning ones (billed as output at a fixed price); `at` is the
        call's time, which a fixed price does not depend on."""
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
    """Model name (or alias) -> `Price`, looked up in layers, first match wins: overrides (from
    config), `corrections` (project rows that fix a catalogue error), the genai-prices catalogue
    (when `catalogue`), then `prices` (project rows for models the catalogue lacks).

    Lookups are cached per (name, date): pricing runs on every call.
    """

    def __init__(
        self,
        prices: list[Price],
        aliases: dict[str, str] | None = None,
        *,
        catalogue: bool = False,
        corrections: list[Price] | None = None,
        overrides: dict[str, Price] | None = None,
    ) -> None:
        self._prices = {price.model: price for price in prices}
        self._aliases = dict(aliases or {})
        self._catalogue = catalogue
        self._corrections = {price.model: price for price in corrections or []}
        self._overrides = dict(overrides or {})
        self._found: dict[tuple[str, date | None], Price | None] = {}

    @classmethod
    def default(cls) -> PriceTable:
        """The genai-prices catalogue with orchestra's rows (`orchestra/data/prices.csv`) and the
        recorded datasets' names for catalogue models (`orchestra/data/catalogue_names.csv`)."""
        fallback, corrections, aliases = _shipped_rows()
        return cls(fallback, aliases, catalogue=True, corrections=corrections)

    @classmethod
    def from_csv(cls, path: str | Path) -> PriceTable:
        """Only the rows of a CSV (columns model, input_per_1m, output_per_1m and optional extras);
        the catalogue is not consulted."""
        rows, aliases = _read_rows(Path(path))
        return cls([price for price, _ in rows], aliases)

    def with_overrides(self, overrides: dict[str, Price]) -> PriceTable:
        """A copy where `overrides` win over every other price of the named models."""
        return PriceTable(
            list(self._prices.values()),
            self._aliases,
            catalogue=self._catalogue,
            corrections=list(self._corrections.values()),
            overrides={**self._overrides, **overrides},
        )

    def lookup(self, model: str, on: date | None = None) -> Price | None:
        """The price of `model` or one of its aliases, or None when no layer knows it. A catalogue
        price is priced on `on` (a recording's date) when given, else on the date of each call."""
        key = (model, on)
        if key not in self._found:
            self._found[key] = self._lookup(model, on)
        return self._found[key]

    def _lookup(self, model: str, on: date | None) -> Price | None:
        names = [model, self._aliases[model]] if model in self._aliases else [model]
        for layer in (self._overrides, self._corrections):
            for name in names:
                if name in layer:
                    return layer[name]
        if self._catalogue:
            from orchestra.providers.price_catalogue import catalogue_price

            for name in names:
                if (price := catalogue_price(name, on)) is not None:
                    return price
        return next((self._prices[name] for name in names if name in self._prices), None)

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float | None:
        """USD for one call, or None when the model is not priced."""
        price = self.lookup(model)
        if price is None:
            return None
        return price.cost(
            input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens
        )

    def models(self) -> list[str]:
        """The names priced by rows and overrides (the catalogue's models are not listed)."""
        return sorted({*self._prices, *self._corrections, *self._overrides})


@cache
def _shipped_rows() -> tuple[list[Price], list[Price], dict[str, str]]:
    data = resources.files("orchestra.data")
    with resources.as_file(data.joinpath("prices.csv")) as path:
        rows, aliases = _read_rows(path)
    with (
        resources.as_file(data.joinpath("catalogue_names.csv")) as path,
        path.open(encoding="utf-8", newline="") as handle,
    ):
        aliases |= {row["name"]: row["catalogue_name"] for row in csv.DictReader(handle)}
    fallback = [price for price, role in rows if role != CORRECTS]
    corrections = [price for price, role in rows if role == CORRECTS]
    return fallback, corrections, aliases


def _read_rows(path: Path) -> tuple[list[tuple[Price, str]], dict[str, str]]:
    """(price, catalogue role) per row, and alias -> model."""
    rows, aliases = [], {}
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
                rows.append((price, row.get("catalogue", "") or ""))
                for alias in filter(None, (row.get("aliases") or "").split("|")):
                    aliases[alias] = price.model
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError(f"price table {path}: {err}") from err
    return rows, aliases


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None
