"""What the SQLite store can take: orchestra's traces through MLflow's span API against a bulk
insert of the very same rows through SQLAlchemy Core, in one process, one after the other.

    .venv/bin/python benchmarks/trace_store_floor.py [--traces 2000] [--batch 250]

1. `--traces` request records are made by orchestra itself (one function provider, the request
   path of `process_request`, logging off so that nothing is written yet);
2. a fresh SQLite store gets an experiment and a run, and its file is copied as a template;
3. MLflow's path: `MlflowStore.write_traces` (what the trace-writer child does: the records'
   spans through `TracingClient.log_spans`, then linked to the run) in batches of `--batch`;
4. the floor: every row step 3 added to any table is read back and inserted into a copy of the
   template with SQLAlchemy Core `executemany`, table by table, one transaction per batch of
   traces; the row counts of both stores are then checked to be equal.

This measures how far MLflow's per-trace ORM work (a flush per new trace, merges that read
before they write, per-trace updates) is from the store's own limit; it does not propose to
write MLflow's tables behind its back.

Then the ways through MLflow's own API, each into a fresh copy of a store whose run holds the
records' request table (as a sweep leaves it with `traces: budget`):

5. the per-trace path: `write_traces` with one record per call (`--per-trace` records), what a
   writer without batching would do: a session, a commit and a link call per trace;
6. `materialise_traces(run_id)` (`orchestra traces RUN_ID`): the request table read back, the
   store asked which traces exist, the rest written in batches of `--batch` (one `log_spans`
   session and commit per batch, `link_traces_to_run` per 100), one process;
7. the same with `workers=2`: two processes, each with its own connection (SQLite serialises
   their commits; the span building and MLflow's per-span work before the session overlap).

One run (2 cores shared with other work, load 6-7): `log_spans` in batches of 250, 210 traces/s
and 3.40 ms CPU a trace; the bulk insert 2,978/s and 0.11 ms; one trace per call 18/s and
16 ms; `materialise_traces` 142/s and 3.53 ms (the table read and lookups included); with two
processes 85/s and 6.8 ms (each worker imports orchestra and MLflow, ~2.5 s of CPU, and SQLite's
write lock serialises the sessions, which are ~90% of `log_spans`).

Where `log_spans` spends a batch of 250 (py-spy 0.4.3, 100 Hz): the spans' bulk upsert 15%
(SQLAlchemy compiling one multi-row INSERT), then work done once per trace that the API gives
no way to batch: a flush inserting each new trace row 14%, an UPDATE of its times, status and
totals 13% (+5% building its CASE expressions), a merge (SELECT, then INSERT) of its
spans-location tag 12%, a SELECT and a merge of its user metadata 10%; translating spans 5%, the
experiment lookup 5%, `link_traces_to_run` 5%, orchestra's span building 3%. MLflow 3.17.2's
store API already takes the spans of many traces in one `log_spans` call (one session and one
commit per batch: what orchestra does, 4.7x the one-trace-per-call path) and links up to 100
traces per call; at ~3.4 ms of CPU a trace it reaches ~300 traces/s per free core, so 400/s
needs more than one core's worth of MLflow's ORM work, which this 2-core machine does not have
to spare (two processes were slower here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import sqlalchemy as sa

from orchestra import FunctionConnector, Orchestra
from orchestra.engine.records import RequestRecord
from orchestra.tracking import materialise_traces
from orchestra.tracking.rows import to_row
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore


async def make_records(n: int) -> list[RequestRecord]:
    config = {"models": {"alpha": {"type": "function"}}, "routing": {"rules": [{"providers": ["alpha"]}]}}
    with tempfile.TemporaryDirectory() as folder:
        orch = Orchestra(config, tracking=TrackingSettings(enabled=False, base_dir=Path(folder)).resolved())
        orch.model_registry.register_connector(
            "alpha", FunctionConnector("alpha", lambda request: f"the answer to {request.prompt} is 42")
        )
        records = []
        for i in range(n):
            await orch.process_request(f"question {i}", user_id="bench")
            assert orch.last_record is not None
            records.append(orch.last_record)
        await orch.aclose()
    return records


def settings(folder: Path) -> TrackingSettings:
    return TrackingSettings(
        tracking_uri="sqlite:///mlflow.db", artifact_location="artifacts", experiment="floor", base_dir=folder
    ).resolved()


def counts(engine: sa.Engine) -> dict[str, int]:
    names = sa.inspect(engine).get_table_names()
    with engine.connect() as connection:
        return {t: connection.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in names}


def added_rows(template: sa.Engine, written: sa.Engine, name: str) -> list[dict]:
    """The rows of table `name` that are in `written` and not in `template`."""

    def rows(engine: sa.Engine) -> list[dict]:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.text(f'SELECT * FROM "{name}"'))]

    generated = {c["name"] for c in sa.inspect(written).get_columns(name) if c.get("computed")}
    old = {tuple(sorted(row.items())) for row in rows(template)} if name in counts(template) else set()
    added = [row for row in rows(written) if tuple(sorted(row.items())) not in old]
    return [{k: v for k, v in row.items() if k not in generated} for row in added]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def through_mlflow_api(
    root: Path, records: list[RequestRecord], args: argparse.Namespace
) -> dict[str, tuple]:
    """Steps 5-7 of the docstring: (traces, wall s, CPU s) of each way."""
    template = root / "table-template"
    template.mkdir()
    store = MlflowStore(settings(template))
    run_id = store.create_run("floor", run_key="floor", params={}, tags={})
    store.write_request_part(run_id, [to_row(record, run_id) for record in records], "part-floor.parquet")
    found: dict[str, tuple] = {}
    for label in ("per_trace", "materialise_1", "materialise_2"):
        folder = root / label
        shutil.copytree(template, folder)  # the run's artifacts stay in the template's folder
        copy = settings(folder)
        wall, cpu, children = time.perf_counter(), time.process_time(), children_cpu()
        if label == "per_trace":
            copy_store = MlflowStore(copy)
            wall, cpu = time.perf_counter(), time.process_time()  # opening the store is not the path
            for record in records[: args.per_trace]:
                copy_store.write_traces(run_id, [record])
            traces = args.per_trace
        else:
            result = materialise_traces(run_id, copy, batch_size=args.batch, workers=int(label[-1]))
            assert result.written == len(records) and result.deferred == 0, result
            traces = result.written
        spent = time.perf_counter() - wall
        used = time.process_time() - cpu + children_cpu() - children
        found[label] = (traces, spent, used)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--per-trace", type=int, default=300, help="records written one per call")
    args = parser.parse_args()
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    records = asyncio.run(make_records(args.traces))
    with tempfile.TemporaryDirectory() as root:
        template, mlflow_path, bulk_path = (Path(root) / name for name in ("template", "mlflow", "bulk"))
        template.mkdir()
        store = MlflowStore(settings(template))
        run_id = store.client.create_run(store.experiment_id).info.run_id
        store.client.set_terminated(run_id)
        shutil.copytree(template, mlflow_path)
        shutil.copytree(template, bulk_path)
        engine_of = {p: sa.create_engine(f"sqlite:///{p / 'mlflow.db'}") for p in (template, mlflow_path)}
        before = counts(engine_of[template])

        store = MlflowStore(settings(mlflow_path))
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(records), args.batch):
            store.write_traces(run_id, records[start : start + args.batch])
        mlflow_wall, mlflow_cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = counts(engine_of[mlflow_path])
        grown = [t for t, n in after.items() if n > before.get(t, 0)]

        metadata = sa.MetaData()
        metadata.reflect(engine_of[mlflow_path], only=grown)
        new_rows = {name: added_rows(engine_of[template], engine_of[mlflow_path], name) for name in grown}
        bulk_engine = sa.create_engine(f"sqlite:///{bulk_path / 'mlflow.db'}")
        order = [t.name for t in metadata.sorted_tables if t.name in new_rows]  # parents first
        per_batch = {name: max(1, len(rows) * args.batch // args.traces) for name, rows in new_rows.items()}
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(0, args.traces, args.batch):
            with bulk_engine.begin() as connection:
                for name in order:
                    share = per_batch[name]
                    chunk = new_rows[name][index // args.batch * share : (index // args.batch + 1) * share]
                    if index + args.batch >= args.traces:
                        chunk = new_rows[name][index // args.batch * share :]
                    if chunk:
                        connection.execute(sa.insert(metadata.tables[name]), chunk)
        bulk_wall, bulk_cpu = time.perf_counter() - wall, time.process_time() - cpu
        bulk_after = counts(bulk_engine)
        if bulk_after != after:
            raise RuntimeError(f"the bulk copy differs: {bulk_after} != {after}")
        api = through_mlflow_api(Path(root), records, args)
    rows = sum(len(r) for r in new_rows.values())  # (FKs: SQLite does not check them on this engine)
    print(f"{args.traces} traces ({rows} rows in {', '.join(sorted(grown))}), batches of {args.batch}")
    for label, spent, used in (
        ("MLflow log_spans + link", mlflow_wall, mlflow_cpu),
        ("SQLAlchemy Core bulk", bulk_wall, bulk_cpu),
    ):
        print(f"  {label:<24}: {spent:.2f} s wall, {used / args.traces * 1000:.2f} ms CPU/trace")
    for label, (traces, spent, used) in api.items():
        print(f"  {label:<24}: {traces} traces, {spent:.2f} s wall, {used / traces * 1000:.2f} ms CPU/trace")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"RESULT mlflow_log_spans_traces_per_s {args.traces / mlflow_wall:.0f}")
    print(f"RESULT mlflow_log_spans_cpu_ms_per_trace {mlflow_cpu / args.traces * 1000:.2f}")
    print(f"RESULT sqlalchemy_bulk_traces_per_s {args.traces / bulk_wall:.0f}")
    print(f"RESULT sqlalchemy_bulk_cpu_ms_per_trace {bulk_cpu / args.traces * 1000:.2f}")
    for label, (traces, spent, used) in api.items():
        print(f"RESULT {label}_traces_per_s {traces / spent:.0f}")
        print(f"RESULT {label}_cpu_ms_per_trace {used / traces * 1000:.2f}")


if __name__ == "__main__":
    main()
