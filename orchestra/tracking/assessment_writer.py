"""Writing a batch of assessments: one transaction on a SQL store, one call each on a server.

MLflow 3.17 has no batch call for assessments; its `create_assessment` commits each one (on
SQLite ~15 ms apiece, ten times the cost of the trace it belongs to; see
benchmarks/trace_feedback.py). On a plain SQL store the batch's new assessments are therefore
added in one session, as `create_assessment` builds them (`SqlAssessments.from_mlflow_entity`,
with the trace's experiment and timestamp). A store that needs more (opt-in trace rollups, a
workspace-aware subclass) and a tracking server get `create_assessment`, one at a time, after one
read of the trace's assessments.

Either way an assessment whose id is there already is left as it is, so a batch written again
adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_CHUNK = 500
"""Ids per `IN (...)` query (SQLite allows 32766 parameters; PostgreSQL many more)."""


def write_assessments(tracking_store: Any, assessments: Sequence[Any]) -> int:
    """Write the `assessments` (with ids set) that are not in the store yet; returns how many."""
    if not assessments:
        return 0
    if _plain_sql_store(tracking_store):
        return _in_one_transaction(tracking_store, assessments)
    return _one_by_one(tracking_store, assessments)


def _plain_sql_store(tracking_store: Any) -> bool:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.store.tracking.utils.sql_trace_rollups import rollups_enabled

    return type(tracking_store) is SqlAlchemyStore and not rollups_enabled()


def _in_one_transaction(store: Any, assessments: Sequence[Any]) -> int:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo

    ids = [a.assessment_id for a in assessments]
    trace_ids = sorted({a.trace_id for a in assessments})
    with store.ManagedSessionMaker(read_only=False) as session:
        there: set[str] = set()
        for chunk in _chunks(ids):
            query = session.query(SqlAssessments.assessment_id).filter(
                SqlAssessments.assessment_id.in_(chunk)
            )
            there.update(row[0] for row in query)
        traces: dict[str, tuple[int, int]] = {}
        for chunk in _chunks(trace_ids):
            query = session.query(
                SqlTraceInfo.request_id, SqlTraceInfo.experiment_id, SqlTraceInfo.timestamp_ms
            )
            traces.update(
                (row[0], (row[1], row[2])) for row in query.filter(SqlTraceInfo.request_id.in_(chunk))
            )
        new = [a for a in assessments if a.assessment_id not in there]
        for assessment in new:
            if assessment.trace_id not in traces:
                raise MlflowException(
                    f"Trace with ID '{assessment.trace_id}' not found.", RESOURCE_DOES_NOT_EXIST
                )
            row = SqlAssessments.from_mlflow_entity(assessment)
            row.experiment_id, row.trace_timestamp_ms = traces[assessment.trace_id]
            session.add(row)
    return len(new)


def _one_by_one(store: Any, assessments: Sequence[Any]) -> int:
    """Per trace: read which of its assessments exist (one call; a failed create would cost the
    client's retries), then create the others."""
    by_trace: dict[str, list[Any]] = {}
    for assessment in assessments:
        by_trace.setdefault(assessment.trace_id, []).append(assessment)
    created = 0
    for trace_id, items in by_trace.items():
        there = {a.assessment_id for a in store.get_trace_info(trace_id).assessments or []}
        for assessment in items:
            if assessment.assessment_id not in there:
                store.create_assessment(assessment)
                created += 1
    return created


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]
