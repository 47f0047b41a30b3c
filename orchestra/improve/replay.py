"""A config run over prompts through `Orchestra.process_request`, one row per prompt.

With replayed providers this is an exact offline evaluation: every provider's recorded answer
and quality label exist for every prompt, so any routing can be scored on the same prompts.

    frame = await replay_config(config, prompts, tracking=None)      # prompt, quality, cost_usd, ...
    run_id = await explore(config, prompts, tracking)                 # every provider on every prompt
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from orchestra.config.schema import Settings
from orchestra.engine.orchestrator import Orchestra
from orchestra.errors import OrchestraError
from orchestra.providers.recorded import ReplayDataset
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG

SCHEMA = {
    "prompt": pl.String,
    "task_type": pl.String,
    "answered_by": pl.String,
    "quality": pl.Float64,
    "cost_usd": pl.Float64,
    "latency_ms": pl.Float64,
    "error_type": pl.String,
}


async def replay_config(
    config: Settings | dict[str, Any] | str | Path,
    prompts: list[tuple[str, str]],
    *,
    tracking: TrackingSettings | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    concurrency: int = 32,
    progress: bool = False,
    datasets: dict[str, ReplayDataset] | None = None,
) -> pl.DataFrame:
    """Ask `config` every (prompt, task type); failed requests are rows with their error type.

    `tracking` None evaluates without logging; otherwise the requests are logged to a run named
    `run_name`, so the evaluation can be inspected and compared in the MLflow UI. Pass
    `datasets` (name -> loaded `ReplayDataset`) to reuse recorded data already in memory."""
    orch = Orchestra(config, tracking=tracking or TrackingSettings(enabled=False), datasets=datasets)
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(prompts), desc=run_name or "replay", disable=not progress)

    async def one(prompt: str, task_type: str) -> tuple[Any, ...]:
        async with gate:
            try:
                result = await orch.process_request(prompt, task_type=task_type, user_id="orchestra-improve")
            except OrchestraError as err:
                return (prompt, task_type, None, None, None, None, type(err).__name__)
            finally:
                bar.update()
        meta = result["metadata"]
        return (
            prompt,
            task_type,
            meta["answered_by"],
            meta["quality"],
            meta["cost_usd"],
            meta["latency_ms"],
            None,
        )

    try:
        if run_name is not None and tracking is not None:
            async with orch.run(run_name, tags=tags):
                rows = await asyncio.gather(*(one(p, t) for p, t in prompts))
        else:
            rows = await asyncio.gather(*(one(p, t) for p, t in prompts))
    finally:
        bar.close()
        await orch.aclose()
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


async def explore(
    config: Settings | dict[str, Any] | str | Path,
    prompts: list[tuple[str, str]],
    tracking: TrackingSettings,
    *,
    run_name: str = "explore",
    concurrency: int = 16,
    progress: bool = False,
    datasets: dict[str, ReplayDataset] | None = None,
) -> str:
    """Ask every configured provider on every prompt (logged as one run, each call with its
    quality and cost): the full-information data a learned router trains on. Returns the run id."""
    orch = Orchestra(config, tracking=tracking, datasets=datasets)
    everyone = len(orch.model_registry)
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(prompts), desc=run_name, disable=not progress)

    async def one(prompt: str, task_type: str) -> None:
        async with gate:
            try:
                await orch.process_request(
                    prompt, task_type=task_type, user_id="orchestra-explore", min_providers=everyone
                )
            except OrchestraError:
                pass  # logged with its error; the other prompts go on
            finally:
                bar.update()

    try:
        async with orch.run(run_name, tags={KIND_TAG: "explore"}) as run:
            await asyncio.gather(*(one(p, t) for p, t in prompts))
    finally:
        bar.close()
        await orch.aclose()
    assert run.run_id is not None
    return run.run_id
