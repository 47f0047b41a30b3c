"""A sweep's prompt set as an MLflow evaluation dataset, and runs linked to it as their input.

    dataset = register_prompt_set(store, "alpacaeval-routing", prompts)  # the same set: found again
    link_runs(store, dataset, [run_id, ...])                             # a link made twice: one

The dataset is named after the sweep and a digest of its prompts (and task types), so a sweep run
again, resumed, or run by a second process finds the dataset it registered instead of adding
one; a changed prompt set is a new dataset. Its records are written once, when it is created:
MLflow changes a dataset's digest on every update, and a run's input is that digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from orchestra.tracking.store import MlflowStore

if TYPE_CHECKING:
    from mlflow.entities import EvaluationDataset

PROMPT_SET_TAG = "orchestra.prompt_set"
_RECORDS_PER_CALL = 500


def prompt_set_digest(prompts: Sequence[tuple[str, str]]) -> str:
    """A short digest of (prompt, task type) pairs, in order."""
    return hashlib.sha256(json.dumps(list(prompts), ensure_ascii=False).encode()).hexdigest()[:12]


def register_prompt_set(
    store: MlflowStore, name: str, prompts: Sequence[tuple[str, str]]
) -> EvaluationDataset:
    """The evaluation dataset of `prompts` (prompt, task type) in the store's experiment, created
    with one record per prompt the first time."""
    digest = prompt_set_digest(prompts)
    dataset_name = f"{name}-prompts-{digest}"
    found = _find(store, dataset_name)
    if found is not None:
        return found
    client = store.client
    created = client.create_dataset(
        name=dataset_name,
        experiment_id=[store.experiment_id],
        tags={PROMPT_SET_TAG: digest, "orchestra.prompts": str(len(prompts))},
    )
    records = [{"inputs": {"prompt": prompt, "task_type": task_type}} for prompt, task_type in prompts]
    tracking_store = client._tracking_client.store  # MlflowClient has no call for records yet
    for start in range(0, len(records), _RECORDS_PER_CALL):
        tracking_store.upsert_dataset_records(created.dataset_id, records[start : start + _RECORDS_PER_CALL])
    # Two processes registering the same new set at once: both keep the oldest of the two.
    return _find(store, dataset_name) or client.get_dataset(created.dataset_id)


def link_runs(store: MlflowStore, dataset: EvaluationDataset, run_ids: Iterable[str]) -> None:
    """Record `dataset` as an input of each run (MLflow keeps one link per run and digest)."""
    from mlflow.entities import DatasetInput
    from mlflow.genai.datasets.evaluation_dataset import EvaluationDataset as GenAIDataset

    entity = GenAIDataset(dataset)._to_mlflow_entity()  # type: ignore[abstract]
    for run_id in run_ids:
        store.client.log_inputs(run_id, datasets=[DatasetInput(entity)])


def _find(store: MlflowStore, dataset_name: str) -> EvaluationDataset | None:
    escaped = dataset_name.replace("'", "''")
    found = store.client.search_datasets(
        experiment_ids=[store.experiment_id],
        filter_string=f"name = '{escaped}'",
        order_by=["created_time ASC"],
    )
    return found[0] if found else None
