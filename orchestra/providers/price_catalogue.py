"""Prices from genai-prices, the maintained catalogue of the pydantic team: current and dated
list prices of every major provider, cached-input and tiered prices included. The package is
imported only here.

price = catalogue_price("gpt-4o")                          # priced at the date of each call
price = catalogue_price("gpt-4", on=date(2024, 1, 9))      # priced as on that day (a replay)
price.cost(1_000, 500, cached_input_tokens=600, reasoning_tokens=300)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from orchestra.providers.pricing import Price

SOURCE = "genai-prices"


@dataclass(frozen=True)
class CataloguePrice(Price):
    """A catalogue model's price. `input_per_1m` and the other rates are its base rates on the day
    the price was looked up (or `on`); `cost` asks the catalogue, which applies tiers and the price
    in force on the day priced: `on` when set (a recording's date), else the date of the call."""

    on: date | None = None
    catalogue_provider: str = ""
    catalogue_model: str = ""

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        at: datetime | None = None,
    ) -> float:
        """USD for one call; counts are clipped so that parts never exceed their totals."""
        cached = min(cached_input_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        reasoning = min(reasoning_tokens, output_tokens)
        counts = (input_tokens, output_tokens, cached, written, reasoning)
        key = (self.catalogue_provider, self.catalogue_model)
        if self.on is not None:  # a fixed day: the same counts always cost the same, so remember
            return _cost_on_day(key, self.on, counts)
        return _cost(key, at or datetime.now(UTC), counts)


def catalogue_price(model: str, on: date | None = None) -> CataloguePrice | None:
    """The catalogue's price of `model` (any name the catalogue matches), or None if it lacks it."""
    found = _find(model)
    if found is None:
        return None
    provider, info = found
    day = on or datetime.now(UTC).date()
    rates = info.get_prices(_noon(day))
    return CataloguePrice(
        model=model,
        input_per_1m=_rate(rates.input_mtok) or 0.0,
        output_per_1m=_rate(rates.output_mtok) or 0.0,
        cached_input_per_1m=_rate(rates.cache_read_mtok),
        cache_write_per_1m=_rate(rates.cache_write_mtok),
        as_of=day.isoformat(),
        source=f"{SOURCE} {catalogue_version()} ({provider.id}/{info.id})",
        on=on,
        catalogue_provider=provider.id,
        catalogue_model=info.id,
    )


@cache
def catalogue_version() -> str:
    import genai_prices

    return genai_prices.__version__


@lru_cache(maxsize=1024)
def _find(model: str) -> tuple[Any, Any] | None:
    """(provider, model info) for a name, or None; the catalogue's own matching rules decide."""
    from genai_prices import data_snapshot

    try:
        return data_snapshot.get_snapshot().find_provider_model(model, None, None, None)
    except LookupError:
        return None


@cache
def _by_id(key: tuple[str, str]) -> tuple[Any, Any]:
    from genai_prices import data_snapshot

    provider_id, model_id = key
    provider = next(p for p in data_snapshot.get_snapshot().providers if p.id == provider_id)
    return provider, next(m for m in provider.models if m.id == model_id)


def _cost(key: tuple[str, str], when: datetime, counts: tuple[int, int, int, int, int]) -> float:
    """The catalogue's cost of `counts` at `when`: the same counts under the same price in force
    (the catalogue's own choice among the model's dated and time-of-day prices) cost the same,
    so the cost is remembered per price in force; asking the catalogue each time costs ~0.1 ms."""
    _, info = _by_id(key)
    return _cost_under(key, _price_in_force(info, when), counts)


def _price_in_force(info: Any, when: datetime) -> int:
    """Which of `info`'s prices the catalogue applies at `when` (its index; 0 if it has one)."""
    in_force = info.get_prices(when)
    if not isinstance(info.prices, list):
        return 0
    return next(i for i, conditional in enumerate(info.prices) if conditional.prices is in_force)


@lru_cache(maxsize=65_536)
def _cost_under(key: tuple[str, str], price_index: int, counts: tuple[int, int, int, int, int]) -> float:
    from genai_prices import Usage

    _, info = _by_id(key)
    model_price = info.prices[price_index].prices if isinstance(info.prices, list) else info.prices
    input_tokens, output_tokens, cached, written, reasoning = counts
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        output_reasoning_tokens=reasoning,
    )
    return float(model_price.calc_price(usage)["total_price"])


@lru_cache(maxsize=65_536)
def _cost_on_day(key: tuple[str, str], day: date, counts: tuple[int, int, int, int, int]) -> float:
    return _cost(key, _noon(day), counts)


def _noon(day: date) -> datetime:
    """A day's prices are read at noon UTC (the catalogue's start dates are UTC days)."""
    return datetime.combine(day, time(12), UTC)


def _rate(value: Any) -> float | None:
    """A per-1M rate as a float: the base rate of a tiered price, None when the model has none."""
    if value is None:
        return None
    return float(value if isinstance(value, Decimal) else value.base)
