"""`orchestra improve`: learn a router or cascade from logged calls and write back a better config.

orchestra improve --config config.yaml --explore            # offline: explore, learn, decide, write back
orchestra improve --config config.yaml --runs RUN_ID ...     # learn from these logged runs
orchestra improve --config config.yaml --schedule            # every improvement.analysis_interval hours
orchestra improve rollback --config config.yaml              # restore the previous config

An accepted candidate replaces the config in place: the previous version is kept in
`<config>.versions/`, the diff is printed, and the write-back is logged as an MLflow run with
the evidence, the policy and both configs. `--out PATH` writes the candidate elsewhere instead;
`--force` writes a proposed or rejected candidate too.
"""

from __future__ import annotations

from pathlib import Path

from orchestra.analysis.requests import load_requests
from orchestra.config.loader import load_settings
from orchestra.config.schema import Settings
from orchestra.errors import ConfigError
from orchestra.improve.data import training_table
from orchestra.improve.loop import improve_async
from orchestra.improve.provenance import log_change
from orchestra.improve.replay import explore
from orchestra.improve.schedule import Schedule
from orchestra.improve.versions import rollback, write_back
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
    schedule: bool = False,
    cycles: int | None = None,
) -> int:
    settings = load_settings(config)
    tracking = load_tracking_settings(tracking_path, search_from=settings.base_dir)
    if not schedule:
        return run_sync(cycle(Path(config), tracking, runs, explore_first, out, force))
    explored = [explore_first]

    async def scheduled() -> None:
        await cycle(Path(config), tracking, runs, explored[0], out, force)
        explored[0] = False  # explore once, then learn from what is logged

    hours = settings.improvement.analysis_interval
    print(f"running the improvement cycle every {hours:g} h (Ctrl-C to stop)", flush=True)
    return 0 if run_sync(Schedule(scheduled, hours * 3600.0, max_cycles=cycles).run()) else 1


def rollback_main(config: str, *, tracking_path: str | None = None) -> int:
    """Restore the previous version of `config`, print the diff, log the rollback."""
    settings = load_settings(config)
    tracking = load_tracking_settings(tracking_path, search_from=settings.base_dir)
    change = rollback(config)
    print(change.diff or "(the restored version is identical)")
    run_id = log_change(tracking, change)
    print(f"restored the previous {Path(config).name}; the replaced one is kept as {change.previous}")
    if run_id:
        print(f"logged as MLflow run {run_id}")
    return 0


async def cycle(
    config: Path,
    tracking: TrackingSettings,
    runs: list[str] | None,
    explore_first: bool,
    out: str | None,
    force: bool,
) -> int:
    """One improvement cycle: (explore,) learn, decide, and write back when accepted."""
    settings = load_settings(config)
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
    if report.config is None or not (report.accepted or force):
        what = "proposed config" if report.status == "proposed" else "config"
        print(f"no {what} written (use --force to write it anyway)")
        return 0
    if out is not None:
        target = report.write(out, force=force)
        print(f"wrote {target} (policy in {report.policy_dir})")
        return 0
    change = write_back(report, config, force=force)
    print(change.diff)
    run_id = log_change(tracking, change, report)
    print(f"wrote back {config.name} (policy in {report.policy_dir}); the previous one is {change.previous}")
    if run_id:
        print(f"write-back logged as MLflow run {run_id}")
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
