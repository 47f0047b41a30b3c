"""The prompts of a sweep: a recorded dataset, a CSV/JSONL/parquet file, or a generated set.

prompts = load_prompts(source, base_dir, datasets)   # [(prompt, task_type), ...]

Every prompt is sent once per arm. A file that repeats prompts (a recorded table has one row
per prompt and model) is reduced to its distinct prompts, in order of first appearance, and
the log says so; when the repeats disagree on the task type, the sweep is refused.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl

from orchestra.errors import ConfigError
from orchestra.logs import get_logger
from orchestra.providers.recorded import ReplayDataset
from orchestra.sweeps.spec import PromptSource

logger = get_logger("orchestra.sweeps")


def load_prompts(
    source: PromptSource, base_dir: Path, datasets: dict[str, ReplayDataset], default_task_type: str
) -> list[tuple[str, str]]:
    if source.dataset is not None:
        if source.dataset not in datasets:
            raise ConfigError(f"prompts.dataset is {source.dataset!r}; the config has {sorted(datasets)}")
        dataset = datasets[source.dataset]
        groups = dataset.groups()
        pairs = [(p, source.task_type or groups.get(p) or default_task_type) for p in dataset.prompts()]
    elif source.file is not None:
        pairs = _from_file(source, base_dir, default_task_type)
    else:
        pairs = _generated(source, default_task_type)
    if not pairs:
        raise ConfigError("the sweep's prompt set is empty")
    return pairs[: source.limit] if source.limit else pairs


def _from_file(source: PromptSource, base_dir: Path, default_task_type: str) -> list[tuple[str, str]]:
    assert source.file is not None
    path = (base_dir / source.file).resolve()
    if not path.is_file():
        raise ConfigError(f"prompts.file {source.file!r} does not exist ({path})")
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path)
    elif name.endswith(".csv"):
        frame = pl.read_csv(path)
    elif name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        frame = pl.read_ndjson(path)
    else:
        raise ConfigError(f"prompts.file {source.file!r}: use parquet, CSV or JSON lines")
    if source.column not in frame.columns:
        raise ConfigError(f"prompts.file has no column {source.column!r} (it has {frame.columns})")
    task_types = (
        frame[source.task_type_column].cast(pl.String).to_list()
        if source.task_type_column
        else [source.task_type or default_task_type] * frame.height
    )
    return _distinct(
        list(zip(frame[source.column].cast(pl.String).to_list(), task_types, strict=True)), source
    )


def _distinct(pairs: list[tuple[str, str]], source: PromptSource) -> list[tuple[str, str]]:
    """Each prompt once (first appearance); refuse when a prompt's rows disagree on its task type."""
    first: dict[str, str] = {}
    for prompt, task_type in pairs:
        known = first.setdefault(prompt, task_type)
        if known != task_type:
            raise ConfigError(
                f"prompts.file {source.file!r} repeats a prompt with different task types "
                f"({known!r} and {task_type!r}): {prompt[:60]!r}; a sweep sends each prompt once per arm, "
                "so give each prompt one task type (or drop task_type_column)"
            )
    if len(first) < len(pairs):
        logger.info(
            "prompts.file %s has %d rows but %d distinct prompts (e.g. one row per prompt and model): "
            "each prompt is sent once per arm",
            source.file,
            len(pairs),
            len(first),
        )
    return list(first.items())


def _generated(source: PromptSource, default_task_type: str) -> list[tuple[str, str]]:
    """`generated: {template: "Explain {topic} to {audience}.", values: {topic: [...], ...}}`."""
    spec = source.generated or {}
    template, values = spec.get("template"), spec.get("values", {})
    if not isinstance(template, str) or not isinstance(values, dict):
        raise ConfigError("prompts.generated needs a template string and a values mapping")
    keys = list(values)
    try:
        prompts = [
            template.format(**dict(zip(keys, combo, strict=True)))
            for combo in itertools.product(*values.values())
        ]
    except KeyError as err:
        raise ConfigError(f"prompts.generated.template uses {err}, which is not under values") from err
    return [(p, source.task_type or default_task_type) for p in prompts]
