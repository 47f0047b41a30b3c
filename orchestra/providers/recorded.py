"""Recorded answers: any table with prompt, model, output and an optional quality label.

dataset = ReplayDataset.from_path("data/alpacaeval/responses.parquet",
                                  prompt_column="instruction", quality_column="preference",
                                  quality_offset=-1.0)
dataset.answer("gpt4", dataset.prompts()[0]).quality
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.config.schema import DatasetSettings
from orchestra.errors import ConfigError
from orchestra.frames import as_frame

if TYPE_CHECKING:
    import polars as pl

READERS: dict[str, str] = {
    ".parquet": "read_parquet",
    ".csv": "read_csv",
    ".jsonl": "read_ndjson",
    ".jsonl.gz": "read_ndjson",
    ".ndjson": "read_ndjson",
    ".json": "read_json",
}
"""File ending -> polars reader (named: polars is imported when a table is read); what a
recorded dataset may be."""


def read_table(path: Path) -> pl.DataFrame:
    """The table in `path`, by its ending; a `ConfigError` for a missing file, another format,
    or a file that is not what its name says (a CSV named .parquet, a truncated file)."""
    import polars as pl

    if not path.is_file():
        raise ConfigError(f"dataset file {str(path)!r} does not exist")
    ending = next((e for e in sorted(READERS, key=len, reverse=True) if path.name.lower().endswith(e)), None)
    if ending is None:
        raise ConfigError(
            f"dataset {path.name}: unsupported format (use {', '.join(READERS)}); the file is {str(path)!r}"
        )
    try:
        reader: Callable[[Path], pl.DataFrame] = getattr(pl, READERS[ending])
        frame = reader(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"dataset {path.name}: could not be read as {ending} ({type(err).__name__}: {first_line})"
        ) from None
    if frame.height == 0:
        raise ConfigError(f"dataset {path.name}: the table has no rows")
    return frame


@functools.lru_cache(maxsize=32)
def _models_in(path: str, column: str, modified_ns: int) -> frozenset[str] | None:
    import polars as pl

    if path.lower().endswith(".parquet"):
        try:
            frame = pl.read_parquet(path, columns=[column])
        except (pl.exceptions.PolarsError, OSError):
            return None  # the full read names the problem
        return frozenset(frame[column].cast(pl.String).drop_nulls().unique().to_list())
    return None


def recorded_models(settings: DatasetSettings, path: Path) -> frozenset[str] | None:
    """The models a dataset file records, read from its model column alone (parquet only, cached
    per file version); None when it cannot be listed without reading the whole table."""
    try:
        modified_ns = path.stat().st_mtime_ns
    except OSError:
        return None
    return _models_in(str(path), settings.model_column, modified_ns)


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """One recorded output of one model for one prompt."""

    output: str
    quality: float | None
    group: str | None


class ReplayDataset:
    """An index (model, prompt) -> `RecordedAnswer` over a normalised table.

    The normalised table (`.table`) has columns prompt, model, output, quality, group.
    """

    def __init__(
        self,
        table: Any,
        *,
        prompt_column: str = "prompt",
        model_column: str = "model",
        output_column: str = "output",
        quality_column: str | None = None,
        quality_offset: float = 0.0,
        quality_scale: float = 1.0,
        group_column: str | None = None,
        name: str = "dataset",
    ) -> None:
        import polars as pl

        frame = as_frame(table)
        wanted = [prompt_column, model_column, output_column, quality_column, group_column]
        missing = [c for c in wanted if c is not None and c not in frame.columns]
        if missing:
            raise ConfigError(
                f"dataset {name!r}: column(s) {missing} not found; the table has: {', '.join(frame.columns)}"
            )
        quality = (
            ((pl.col(quality_column).cast(pl.Float64) + quality_offset) * quality_scale)
            if quality_column
            else pl.lit(None, dtype=pl.Float64)
        )
        group = pl.col(group_column).cast(pl.String) if group_column else pl.lit(None, dtype=pl.String)
        self.table = frame.select(
            pl.col(prompt_column).cast(pl.String).alias("prompt"),
            pl.col(model_column).cast(pl.String).alias("model"),
            pl.col(output_column).cast(pl.String).alias("output"),
            quality.alias("quality"),
            group.alias("group"),
        )
        self.name = name
        duplicated = self.table.select("model", "prompt").is_duplicated().sum()
        if duplicated:
            raise ConfigError(
                f"dataset {name!r}: {duplicated} rows repeat a (model, prompt) pair; "
                "replay needs one recorded output per pair"
            )
        self._index: dict[tuple[str, str], RecordedAnswer] = {
            (model, prompt): RecordedAnswer(output, quality, group_value)
            for prompt, model, output, quality, group_value in self.table.iter_rows()
        }
        counts = self.table.group_by("model").len()
        self._prompt_counts = dict(zip(counts["model"].to_list(), counts["len"].to_list(), strict=True))

    @classmethod
    def from_path(cls, path: str | Path, **columns: Any) -> ReplayDataset:
        """Read parquet, CSV, JSON lines (optionally gzipped) or JSON."""
        path = Path(path)
        columns.setdefault("name", path.name)
        return cls(read_table(path), **columns)

    @classmethod
    def from_settings(cls, settings: DatasetSettings, path: Path, name: str) -> ReplayDataset:
        return cls.from_path(
            path,
            prompt_column=settings.prompt_column,
            model_column=settings.model_column,
            output_column=settings.output_column,
            quality_column=settings.quality_column,
            quality_offset=settings.quality_offset,
            quality_scale=settings.quality_scale,
            group_column=settings.group_column,
            name=name,
        )

    def answer(self, model: str, prompt: str) -> RecordedAnswer | None:
        return self._index.get((model, prompt))

    def models(self) -> list[str]:
        return sorted(self._prompt_counts)

    def prompt_count(self, model: str) -> int:
        return self._prompt_counts.get(model, 0)

    def prompts(self) -> list[str]:
        """Distinct prompts in table order."""
        return self.table["prompt"].unique(maintain_order=True).to_list()

    def groups(self) -> dict[str, str | None]:
        """Prompt -> group label (for AlpacaEval: the subset), first seen wins."""
        frame = self.table.select("prompt", "group").unique("prompt", maintain_order=True)
        return dict(frame.iter_rows())

    def __len__(self) -> int:
        return len(self._index)
