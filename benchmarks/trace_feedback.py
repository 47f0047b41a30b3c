"""What logging quality as MLflow assessments costs the trace writer, on a real SQLite store.

The same request records are written as traces twice, in the writer's batches: once carrying
their quality signals (a judge label, two labelled calls and a consensus: 5 assessments per
trace; or a single-provider label: 1), and once with those removed (the baseline: traces only,
as before assessments were written). A third pass writes the labelled batch again, as a retried
batch would (every assessment found there already).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/trace_feedback.py [--records 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from orchestra.engine.records import CallRecord, RequestRecord
from orchestra.tracking.assessments import request_feedback
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore


def record(index: int, consensus: bool) -> RequestRecord:
    now = time.time_ns()
    providers = ["gpt-4", "mistral-7b"] if consensus else ["gpt-4"]
    calls = [
        CallRecord(p, p, now, now + 1_000, ok=True, quality=float(i % 2), content="answer " * 40)
        for i, p in enumerate(providers)
    ]
    return RequestRecord(
        request_id=uuid.uuid4().hex,
        run_key="bench",
        start_ns=now,
        end_ns=now + 2_000,
        user_id="u",
        session_id=None,
        task_type="general",
        prompt=f"prompt {index} " * 20,
        response="answer " * 40,
        answered_by="gpt-4",
        calls=calls,
        quality=1.0,
        confidence=0.7 if consensus else None,
        consensus={"method": "lexical", "agreement": 0.4, "providers": providers} if consensus else None,
    )


def unlabelled(item: RequestRecord) -> RequestRecord:
    calls = [replace(call, quality=None) for call in item.calls]
    return replace(
        item, request_id=uuid.uuid4().hex, quality=None, confidence=None, consensus=None, calls=calls
    )


def write_all(store: MlflowStore, run_id: str, records: list[RequestRecord], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        store.write_traces(run_id, records[start : start + batch])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--batch", type=int, default=TrackingSettings().batch_size)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = Path(tempfile.mkdtemp(prefix="orchestra-bench-"))
    try:
        settings = TrackingSettings(
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            artifact_location=str(folder / "artifacts"),
            spool_dir=str(folder / "spool"),
            experiment="bench",
        )
        store = MlflowStore(settings)
        run_id = store.create_run("bench", run_key="bench", params={}, tags={})
        labelled = [record(i, consensus=i % 2 == 0) for i in range(args.records)]
        plain = [unlabelled(item) for item in labelled]
        assessments = sum(len(request_feedback(item)) for item in labelled)
        write_all(store, run_id, [record(i, True) for i in range(20)], args.batch)  # warm up
        baseline = write_all(store, run_id, plain, args.batch)
        with_feedback = write_all(store, run_id, labelled, args.batch)
        retried = write_all(store, run_id, labelled, args.batch)
        n = args.records
        print(f"{n} traces, {assessments} assessments, batches of {args.batch}, SQLite")
        print(f"  traces only          {n / baseline:8.1f} traces/s")
        print(f"  traces + assessments {n / with_feedback:8.1f} traces/s")
        print(f"  the same batch again {n / retried:8.1f} traces/s (every assessment already there)")
        print(f"RESULT traces_per_s_baseline {n / baseline:.1f}")
        print(f"RESULT traces_per_s_with_assessments {n / with_feedback:.1f}")
        print(f"RESULT traces_per_s_retried_batch {n / retried:.1f}")
        print(f"RESULT assessment_write_ms {(with_feedback - baseline) / assessments * 1000:.2f}")
        print(f"RESULT slowdown_with_assessments {with_feedback / baseline:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
