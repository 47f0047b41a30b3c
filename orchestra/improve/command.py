"""`orchestra improve`: learn a router from logged calls and write back an improved config.

orchestra improve --config config.yaml --explore            # offline: explore, learn, evaluate, write
orchestra improve --config config.yaml --runs RUN_ID ...     # learn from these logged runs
"""

from __future__ import annotations

from pathlib import Path

from orchestra.analysis.requests import load_requests
from orchestra.config.loader import load_settings
from orchestra.config.schema import Settings
from orchestra.errors import ConfigError
from orchestra.improve.data import training_table
from orchestra.improve.loop import improve_async
from orchestra.improve.replay import explore
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import load_dataset
from orchestra.sync import run_sync
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings


def main(
    config: str,
    *,
    tracking_path: str | None = None,
    runs: list[str] | None = None,
    explore_first: bool = False,
    out: str | None = None,
    force: bool = False,
) -> int:
    settings = load_settings(config)
    tracking = load_tracking_settings(tracking_path, search_from=settings.base_dir)
    return run_sync(_main(Path(config), settings, tracking, runs, explore_first, out, force))


async def _main(
    config: Path,
    settings: Settings,
    tracking: TrackingSettings,
    runs: list[str] | None,
    explore_first: bool,
    out: str | None,
    force: bool,
) -> int:
    datasets = {name: load_dataset(settings, name) for name in settings.datasets}
    if explore_first:
        prompts = dataset_prompts(settings, datasets)
        run_id = await explore(config, prompts, tracking, progress=True, datasets=datasets)
        print(f"exploration run {run_id}: every provider on {len(prompts)} prompts")
        runs = [*(runs or []), run_id]
    requests = load_requests(run_ids=runs or None, tracking=tracking)
    table = training_table(requests)
    if table.is_empty():
        raise ConfigError("no logged calls with quality labels to learn from (try --explore offline)")
    print(f"training data: {table.height} calls on {table['prompt'].n_unique()} prompts")
    report = await improve_async(config, table, tracking=tracking, progress=True, datasets=datasets)
    print(report)
    if report.accepted or force:
        target = report.write(out or config.with_name(f"{config.stem}.improved.yaml"), force=force)
        print(f"wrote {target} (learned router in {report.policy_dir})")
    else:
        print("no config written (use --force to write it anyway)")
    return 0


def dataset_prompts(
    settings: Settings, datasets: dict[str, ReplayDataset] | None = None
) -> list[tuple[str, str]]:
    """Every prompt of every configured dataset, with its group as task type."""
    prompts = []
    for name in settings.datasets:
        dataset = datasets[name] if datasets is not None else load_dataset(settings, name)
        groups = dataset.groups()
        prompts += [(p, groups.get(p) or settings.framework.default_task_type) for p in dataset.prompts()]
    return prompts
