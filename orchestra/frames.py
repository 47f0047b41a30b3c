"""Tables in, polars out: every function that takes a table accepts polars (eager or lazy) or pandas.

frame = as_frame(pandas_or_polars)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def as_frame(table: Any) -> pl.DataFrame:
    """`table` as an eager polars DataFrame (a LazyFrame is collected, pandas converted)."""
    import polars as pl

    if isinstance(table, pl.DataFrame):
        return table
    if isinstance(table, pl.LazyFrame):
        return table.collect()
    return pl.from_pandas(table)
