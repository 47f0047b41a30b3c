"""Closing the runs of a process that died: what its journal held is written, then its runs end.

A run the dead process created and never ended is marked FAILED (if it is still RUNNING; a
resumed sweep may have taken it over) and tagged with how many of its records were recovered.

    finish_crashed_runs(journal, store)     # after the adopted journal is drained
"""

from __future__ import annotations

from orchestra.logs import get_logger
from orchestra.tracking.journal import Journal
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.tags import RECOVERED_TAG

logger = get_logger("orchestra.tracking")

RECOVERED_FROM_TAG = "orchestra.recovered_from"


def finish_crashed_runs(journal: Journal, store: MlflowStore) -> list[str]:
    """Mark the journal's unfinished runs FAILED with a recovery note; returns their run ids."""
    failed = []
    for state in journal.runs():
        if not state.created_here or state.ended or state.run_id is None:
            continue
        if store.client.get_run(state.run_id).info.status == "RUNNING":
            recovered = journal.recovered.get(state.run_key, 0)
            store.set_tags(state.run_id, {RECOVERED_TAG: str(recovered), RECOVERED_FROM_TAG: journal.id})
            store.terminate(state.run_id, "FAILED")
            failed.append(state.run_id)
            logger.warning(
                "run %s was left RUNNING by a process that died; %d of its records were recovered "
                "from journal %s and written; the run is marked FAILED",
                state.run_id,
                recovered,
                journal.path,
            )
        journal.mark_run_ended(state.run_key)
    return failed
