"""Traces within a CPU budget: deferred ones counted on the run and in the flush, written later by
`orchestra traces RUN_ID` (real SQLite stores, a real trace writer, a logical clock)."""

from __future__ import annotations

import uuid

from orchestra import FunctionConnector, Orchestra
from orchestra.app.cli import main as cli_main
from orchestra.engine.records import CallRecord, RequestRecord, RetriedError
from orchestra.tracking import materialise_traces
from orchestra.tracking.reader import read_request_table
from orchestra.tracking.rows import record_from_row, rows_table, to_row
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.spans import request_spans
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.trace_budget import FIT_WINDOW, TraceBudget
from orchestra.tracking.tracker import Tracker
from tests.conftest import scripted_config
from tests.fake_clock import FakeClock

# ---- the bucket alone ----------------------------------------------------------------------


def test_an_empty_bucket_affords_nothing_and_a_debt_is_repaid_by_what_is_earned():
    clock = FakeClock(now=0.0)
    budget = TraceBudget(per_request_ms=0.5, per_second_ms=10.0, burst_ms=20.0, clock=clock)
    assert budget.affordable(3) == 3  # 5 + 3 * 3 ms (the priors) <= 20 ms: all of them
    assert budget.affordable(100) == 5  # a full bucket writes what it affords: (20 - 5) / 3
    budget.spend(cpu_s=0.030, traces=5)  # measured
    assert budget.level_ms == -10.0 and budget.affordable(1) == 0
    budget.earn(requests=10)  # +5 ms
    assert budget.affordable(1) == 0
    clock.now += 2.0  # +20 ms
    budget.earn()
    assert budget.level_ms == 15.0


def test_the_cost_model_is_fitted_to_the_measured_batches_and_the_warmup_is_not_charged():
    budget = TraceBudget(per_request_ms=0.0, per_second_ms=0.0, burst_ms=1000.0, clock=FakeClock())
    budget.spend(cpu_s=0.5, traces=1, warmup=True)
    assert budget.level_ms == 1000.0 and budget.batch_cost_ms(10) == 35.0  # the priors
    budget.spend(cpu_s=0.010, traces=1)  # 7 + 3 * 1
    budget.spend(cpu_s=0.037, traces=10)  # 7 + 3 * 10
    assert round(budget.batch_cost_ms(100), 6) == 307.0
    assert budget.level_ms == 953.0 and budget.affordable(1000) == 315  # (953 - 7) / 3
    for _ in range(FIT_WINDOW // 2):  # the store got slower: the model follows the recent batches
        budget.spend(cpu_s=0.014, traces=2)  # 5 + 4.5 * 2
        budget.spend(cpu_s=0.095, traces=20)  # 5 + 4.5 * 20
    assert round(budget.batch_cost_ms(100), 6) == 455.0


def test_below_what_every_pending_trace_costs_the_bucket_saves_up_for_a_batch():
    clock = FakeClock(now=0.0)
    budget = TraceBudget(per_request_ms=1.0, per_second_ms=0.0, burst_ms=200.0, clock=clock)
    budget.spend(cpu_s=0.2, traces=50)  # empty: 5 + 50 * 3.9 = 200
    for _ in range(3):
        budget.earn(requests=20)  # 20 ms a pass: 3 traces, fewer than a batch of 20
        assert budget.affordable(200) == 0
    budget.earn(requests=30)  # 90 ms: (90 - 5) / 3.9 = 21 >= 20
    assert budget.affordable(200) == 21


def test_idle_time_fills_the_bucket_only_up_to_the_burst():
    clock = FakeClock(now=0.0)
    budget = TraceBudget(per_request_ms=1.0, per_second_ms=50.0, burst_ms=40.0, clock=clock)
    budget.spend(cpu_s=0.1, traces=10)
    clock.now += 3600
    budget.earn(requests=1000)
    assert budget.level_ms == 40.0


# ---- through the tracker -------------------------------------------------------------------


def _orchestra(settings: TrackingSettings, clock: FakeClock) -> Orchestra:
    orch = Orchestra(scripted_config("a"), tracking=settings, tracker=Tracker(settings, clock=clock))
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: f"answer to {r.prompt}"))
    return orch


def _budget(tracking: TrackingSettings, **changes: object) -> TrackingSettings:
    return tracking.model_copy(update={"traces": "budget", **changes})


def _traces_of_run(store: MlflowStore, run_id: str) -> set[str]:
    traces = store.client.search_traces(locations=[store.experiment_id], run_id=run_id, max_results=1000)
    return {trace.info.request_id for trace in traces}


def _metrics(store: MlflowStore, run_id: str) -> dict[str, float]:
    return store.client.get_run(run_id).data.metrics


async def test_slow_requests_all_get_their_trace_live(tracking):
    clock = FakeClock()
    settings = _budget(
        tracking, trace_cpu_ms_per_request=0.0, trace_cpu_ms_per_s=1.0, trace_cpu_burst_ms=0.001
    )
    orch = _orchestra(settings, clock)
    async with orch.run("notebook") as scope:
        ids = []
        for i in range(4):
            clock.now += 1000.0  # a person reading each answer: the bucket refills in between
            ids.append((await orch.process_request(f"q{i}", user_id="u1"))["metadata"]["trace_id"])
            assert await orch.flush()
    result = await orch.flush()
    assert result and result.traces_deferred == 0
    store = MlflowStore(settings)
    assert _traces_of_run(store, scope.run_id) == set(ids)
    assert _metrics(store, scope.run_id)["traces_written"] == 4
    assert _metrics(store, scope.run_id)["traces_deferred"] == 0
    await orch.aclose()


async def test_a_burst_beyond_the_budget_is_deferred_counted_and_materialised_once(tracking, capsys):
    clock = FakeClock(frozen=True)
    settings = _budget(
        tracking, trace_cpu_ms_per_request=0.0, trace_cpu_ms_per_s=1.0, trace_cpu_burst_ms=0.001
    )
    orch = _orchestra(settings, clock)
    async with orch.run("sweep") as scope:
        live = []
        for i in range(3):  # slow: each is written (the first is the writer's warm-up)
            clock.now += 1000.0
            live.append((await orch.process_request(f"slow {i}", user_id="u1"))["metadata"]["trace_id"])
            assert await orch.flush()
        burst = [
            (await orch.process_request(f"fast {i}", user_id="u1"))["metadata"]["trace_id"] for i in range(10)
        ]  # no time passes: the bucket is in debt after the last write, nothing more is afforded
        result = await orch.flush()
    assert result, "deferred traces are not pending records: every row is in the store"
    assert result.traces_deferred == 10 and result.pending == 0
    assert "traces deferred 10" in str(result)
    assert orch.tracker.stats().traces_deferred == 10 and orch.tracker.stats().traces_written == 3
    assert orch.tracker.status().traces_deferred == 10
    await orch.aclose()

    store = MlflowStore(settings)
    assert read_request_table(settings, scope.run_id).height == 13  # the request table has them all
    assert _traces_of_run(store, scope.run_id) == set(live)
    assert _metrics(store, scope.run_id)["traces_written"] == 3
    assert _metrics(store, scope.run_id)["traces_deferred"] == 10

    written = materialise_traces(scope.run_id, settings)
    assert (written.requests, written.already, written.written, written.deferred) == (13, 3, 10, 0)
    assert _traces_of_run(store, scope.run_id) == set(live) | set(burst)
    assert _metrics(store, scope.run_id)["traces_written"] == 13
    assert _metrics(store, scope.run_id)["traces_deferred"] == 0
    spans = store.client.get_trace(burst[0]).data.spans
    assert {span.name for span in spans} >= {"orchestra.general", "route", "call a"}

    again = materialise_traces(scope.run_id, settings)  # idempotent: nothing new
    assert (again.already, again.written) == (13, 0)
    assert len(store.client.search_traces(locations=[store.experiment_id], max_results=1000)) == 13


async def test_traces_off_defers_every_one_and_the_command_writes_them(
    tracking, tmp_path, capsys, monkeypatch
):
    settings = _budget(tracking, traces="off", trace_writer="process")
    orch = _orchestra(settings, FakeClock())
    async with orch.run("off") as scope:
        for i in range(5):
            await orch.process_request(f"q{i}", user_id="u1")
    result = await orch.flush()
    assert result and result.traces_deferred == 5
    await orch.aclose()
    assert type(orch.tracker._writer._trace_backend).__name__ == "TraceSink"  # no child process started

    (tmp_path / "mlflow.yaml").write_text(
        "tracking_uri: sqlite:///mlflow.db\nexperiment: tests\nartifact_location: artifacts\n"
    )
    monkeypatch.chdir(tmp_path)
    assert cli_main(["traces", scope.run_id, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"run {scope.run_id}" in printed and "5 requests; 0 had a trace, 5 written now" in printed
    assert cli_main(["traces", scope.run_id, "--quiet"]) == 0
    assert "5 had a trace, 0 written now" in capsys.readouterr().out
    unknown = uuid.uuid4().hex  # not a piece of any key another test registered (those are masked)
    assert cli_main(["traces", unknown, "--quiet"]) == 2
    assert f"there is no run '{unknown}'" in capsys.readouterr().err
    store = MlflowStore(settings)
    assert len(_traces_of_run(store, scope.run_id)) == 5
    assert _metrics(store, scope.run_id)["traces_deferred"] == 0


def test_a_row_holds_everything_its_trace_shows():
    call = CallRecord(
        provider="a",
        model="m-1",
        start_ns=1_700_000_000_123_456_789,
        end_ns=1_700_000_000_523_456_789,
        ok=True,
        latency_ms=400.0,
        input_tokens=12,
        output_tokens=34,
        cost_usd=0.002,
        quality=1.0,
        content="hi",
        attempts=2,
        retried_errors=[
            RetriedError(error_type="RateLimited", message="slow down", status=429, waited_s=1.0)
        ],
        cached_input_tokens=3,
    )
    failed = CallRecord(provider="b", model=None, start_ns=1, end_ns=2, ok=False, error_type="X", quality=0.0)
    record = RequestRecord(
        request_id="0123456789abcdef0123456789abcdef",
        run_key="k",
        start_ns=1_700_000_000_000_000_001,
        end_ns=1_700_000_000_900_000_002,
        user_id="u",
        session_id="s",
        task_type="general",
        prompt="p",
        response="hi",
        system_prompt="be brief",
        routing={"strategy": "rules", "chosen": ["a"], "candidate_scores": {"a": 1.0}},
        route_start_ns=1_700_000_000_000_000_005,
        route_end_ns=1_700_000_000_000_000_009,
        calls=[call, failed],
        consensus={"method": "majority", "agreement": 0.5, "providers": ["a", "b"]},
        consensus_start_ns=1_700_000_000_800_000_000,
        consensus_end_ns=1_700_000_000_850_000_000,
        answered_by="a",
        providers_used=["a"],
        processing_time_ms=900.0,
        latency_ms=400.0,
        cost_usd=0.002,
        quality=1.0,
        confidence=0.75,
        tags={"arm": "x"},
    )
    row = rows_table([to_row(record, "run")]).to_pylist()[0]  # through Arrow, as a part holds it
    rebuilt = record_from_row(row)
    assert [span.to_dict() for span in request_spans(rebuilt)] == [
        span.to_dict() for span in request_spans(record)
    ]
    from orchestra.tracking.assessments import request_feedback

    assert [f.to_dictionary() for f in request_feedback(rebuilt)] == [
        f.to_dictionary() for f in request_feedback(record)
    ]


def test_parts_written_before_version_3_are_read_beside_new_ones_and_materialised(tracking):
    import pyarrow as pa

    store = MlflowStore(tracking)
    run_id = store.create_run("mixed", run_key="mixed", params={}, tags={})
    records = [
        RequestRecord(
            request_id=f"{i:032x}",
            run_key="mixed",
            start_ns=1_700_000_000_000_000_000 + i,
            end_ns=1_700_000_001_000_000_000,
            user_id="u",
            session_id=None,
            task_type="general",
            prompt=f"p{i}",
            response="r",
            processing_time_ms=1000.0,
        )
        for i in (1, 2)
    ]
    old = rows_table([to_row(records[0], run_id)])
    old = old.drop_columns(
        [name for name in old.column_names if name.endswith("_ns") or name == "system_prompt"]
    )
    assert isinstance(old, pa.Table) and "end_ns" not in old.column_names
    store.write_request_part(run_id, old, "part-old.parquet")
    store.write_request_part(run_id, [to_row(records[1], run_id)], "part-new.parquet")
    table = read_request_table(tracking, run_id)
    assert table["request_id"].to_list() == [records[0].request_id, records[1].request_id]
    assert table["end_ns"].to_list() == [None, records[1].end_ns]
    result = materialise_traces(run_id, tracking)
    assert (result.requests, result.written) == (2, 2)
    info = store.client.get_trace(records[0].trace_id).info
    assert info.execution_duration == 1000  # the end taken as start + processing time
