"""Response caches: SQLite on disk by default, Redis optional."""

from orchestra.cache.base import ResponseCache, cache_key
from orchestra.cache.sqlite import SQLiteCache

__all__ = ["ResponseCache", "SQLiteCache", "cache_key"]
