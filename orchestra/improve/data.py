"""Training tables for learned routing: one row per call with a quality label.

    table = training_table(load_requests(run_ids=[explore_run_id]))   # from logged calls
    table = await recorded_table(settings, prompts)                    # straight from replay

An exploration run (every provider asked on each prompt, e.g. `min_providers` = all of them)
gives full information: each provider's quality, cost and answer on the same prompts. The
answer text (`output`) is what a cascade's acceptance model reads.
"""

from __future__ import annotations

import polars as pl

from orchestra.config.schema import Settings
from orchestra.errors import OrchestraError
from orchestra.frames import as_frame
from orchestra.providers.recorded import ReplayDataset
from orchestra.types import ModelProvider, ModelRequest

COLUMNS = ["prompt", "task_type", "provider", "quality", "cost_usd", "latency_ms", "output"]

_CALL = pl.List(
    pl.Struct(
        {
            "provider": pl.String,
            "ok": pl.Boolean,
            "latency_ms": pl.Float64,
            "cost_usd": pl.Float64,
            "quality": pl.Float64,
            "content": pl.String,
        }
    )
)


def training_table(requests: pl.DataFrame) -> pl.DataFrame:
    """Every successful logged call with a quality label, with its request's prompt and answer."""
    frame = as_frame(requests)
    if "prompt" not in frame.columns:
        raise ValueError("the requests need their prompt column (load_requests reads it by default)")
    calls = (
        frame.select("prompt", "task_type", pl.col("calls_json").str.json_decode(_CALL).alias("call"))
        .explode("call")
        .drop_nulls("call")
        .unnest("call")
    )
    return (
        calls.filter(pl.col("ok") & pl.col("quality").is_not_null())
        .rename({"content": "output"})
        .select(COLUMNS)
    )


async def recorded_table(
    settings: Settings,
    prompts: list[tuple[str, str]],
    *,
    datasets: dict[str, ReplayDataset] | None = None,
    labelled_only: bool = True,
) -> pl.DataFrame:
    """Every replay provider's recorded answer to every prompt, as `training_table` rows, without
    the engine or logging (the full-information table benchmarks and tests start from).
    `labelled_only=False` keeps answers without a quality label (quality null)."""
    from orchestra.engine.orchestrator import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    orch = Orchestra(settings, tracking=TrackingSettings(enabled=False), datasets=datasets)
    connectors = {
        name: orch.model_registry.get(name)
        for name, provider in settings.models.items()
        if provider.type == ModelProvider.REPLAY
    }
    rows = []
    for prompt, task_type in prompts:
        for name, connector in connectors.items():
            try:
                answer = await connector.generate(ModelRequest(prompt=prompt))
            except OrchestraError:
                continue  # not recorded for this model
            quality = answer.metadata.get("quality")
            if quality is not None or not labelled_only:
                rows.append(
                    (prompt, task_type, name, quality, answer.cost_usd, answer.latency_ms, answer.content)
                )
    await orch.aclose()
    schema = dict.fromkeys(COLUMNS, pl.String) | {
        "quality": pl.Float64,
        "cost_usd": pl.Float64,
        "latency_ms": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")
