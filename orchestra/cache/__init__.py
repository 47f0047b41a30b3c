"""Response caches: SQLite on disk by default, Redis optional."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.cache.base import ResponseCache, cache_key
    from orchestra.cache.sqlite import SQLiteCache
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.cache.base": ["ResponseCache", "cache_key"],
            "orchestra.cache.sqlite": ["SQLiteCache"],
        },
    )

__all__ = ["ResponseCache", "SQLiteCache", "cache_key"]
