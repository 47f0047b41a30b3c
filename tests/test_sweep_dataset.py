"""A sweep's prompt set is an MLflow evaluation dataset on a real SQLite store: registered once per
prompt set, with one record per prompt, and the input of the parent run and every arm run."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from orchestra.sweeps import run_sweep
from orchestra.sweeps.prompts import load_prompts
from orchestra.tracking.datasets import PROMPT_SET_TAG, prompt_set_digest, register_prompt_set
from orchestra.tracking.store import MlflowStore
from tests.test_sweeps import sweep_tracking, write_sweep

ARMS = [
    {"name": "gpt", "routing.rules": [{"providers": ["gpt-4"]}]},
    {"name": "mistral", "routing.rules": [{"providers": ["mistral-7b"]}]},
]


def _records(tracking, dataset_id: str, monkeypatch):
    """The dataset's records, read as a user would (MLflow reads records from the default store)."""
    from mlflow.genai.datasets import get_dataset

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.tracking_uri)
    return get_dataset(dataset_id=dataset_id).to_df()


def _sweep_prompts(folder) -> list[tuple[str, str]]:
    """The prompts the sweep runs, read the way the runner reads them."""
    from orchestra.config.loader import settings_from_dict
    from orchestra.providers.registry import load_dataset
    from orchestra.sweeps.spec import read_sweep

    sweep = read_sweep(folder / "sweep.yaml")
    base = settings_from_dict(sweep.config, base_dir=sweep.config_path.parent)
    datasets = {name: load_dataset(base, name) for name in base.datasets}
    return load_prompts(sweep.spec.prompts, sweep.folder, datasets, base.framework.default_task_type)[:4]


def _inputs(client: MlflowClient, run_id: str) -> list:
    return [i.dataset for i in client.get_run(run_id).inputs.dataset_inputs]


def test_a_sweep_registers_its_prompts_once_and_links_its_runs(tmp_path, empty_store_template, monkeypatch):
    tracking = sweep_tracking(tmp_path, empty_store_template)
    path = write_sweep(tmp_path, arms=ARMS, limit=4)
    summary = run_sweep(path, tracking=tracking, progress=False)
    store = MlflowStore(tracking)
    client = MlflowClient(tracking.tracking_uri)

    (dataset,) = client.search_datasets(experiment_ids=[store.experiment_id])
    records = _records(tracking, dataset.dataset_id, monkeypatch)
    prompts = [(r["prompt"], r["task_type"]) for r in records["inputs"]]
    assert sorted(prompts) == sorted(_sweep_prompts(tmp_path))
    assert dataset.tags[PROMPT_SET_TAG] in dataset.name and dataset.name.startswith("test-sweep-prompts-")
    runs = [summary.parent_run_id, *summary.table["run_id"]]
    assert len(runs) == 3
    for run_id in runs:
        (linked,) = _inputs(client, run_id)
        assert linked.name == dataset.name and linked.digest == dataset.digest
        assert json.loads(linked.source)["dataset_id"] == dataset.dataset_id

    # The same sweep again (its arms are complete) and the same prompt set under a new arm: no
    # second dataset, no second link, and the new arm's run is linked too.
    run_sweep(path, tracking=tracking, progress=False)
    grown = write_sweep(
        tmp_path,
        arms=[*ARMS, {"name": "mixtral", "routing.rules": [{"providers": ["mixtral-8x7b"]}]}],
        limit=4,
    )
    again = run_sweep(grown, tracking=tracking, progress=False)
    assert len(client.search_datasets(experiment_ids=[store.experiment_id])) == 1
    for run_id in [again.parent_run_id, *again.table["run_id"]]:
        (linked,) = _inputs(client, run_id)
        assert linked.digest == dataset.digest
    for run_id in runs:
        assert len(_inputs(client, run_id)) == 1


def test_another_prompt_set_is_another_dataset(tracking, monkeypatch):
    store = MlflowStore(tracking)
    first = register_prompt_set(store, "s", [("a?", "general"), ("b?", "general")])
    assert (
        register_prompt_set(store, "s", [("a?", "general"), ("b?", "general")]).dataset_id == first.dataset_id
    )
    other = register_prompt_set(store, "s", [("a?", "general"), ("b?", "qa")])
    assert other.dataset_id != first.dataset_id
    assert other.name == f"s-prompts-{prompt_set_digest([('a?', 'general'), ('b?', 'qa')])}"
    assert len(_records(tracking, other.dataset_id, monkeypatch)) == 2
