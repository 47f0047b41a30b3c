"""Quality as MLflow assessments: a replay run's judge labels and consensus measurements are
feedback on its traces in a real SQLite store, written once however often a batch is retried."""

from __future__ import annotations

import time

import pytest

from orchestra import Orchestra
from orchestra.engine.records import CallRecord, RequestRecord
from orchestra.providers.registry import load_dataset
from orchestra.tracking.assessments import AGREEMENT, CONFIDENCE, JUDGE_SOURCE_ID, QUALITY, request_feedback
from orchestra.tracking.codec import encode_record
from orchestra.tracking.spans import call_span_id
from orchestra.tracking.store import MlflowStore
from orchestra.tracking.trace_process import TraceProcess
from tests.conftest import alpaca_config

PROVIDERS = {"gpt-4": "gpt4", "mistral-7b": "Mistral-7B-Instruct-v0.2"}


def _feedback(trace) -> dict[tuple[str, str | None], object]:
    return {(a.name, a.span_id): a for a in trace.info.assessments}


async def test_a_replay_run_puts_labels_and_consensus_on_its_traces(tracking, client):
    routing = {"rules": [{"providers": list(PROVIDERS), "require_consensus": True}]}
    raw = alpaca_config(**routing) | {"consensus": {"default_strategy": "lexical"}}
    orch = Orchestra(raw, tracking=tracking.model_copy(update={"trace_writer": "process", "traces": "all"}))
    dataset = load_dataset(orch.settings, "alpacaeval")
    prompts = dataset.prompts()[:4]
    async with orch.run("labelled") as scope:
        results = [await orch.process_request(prompt) for prompt in prompts]
    assert await orch.flush()
    await orch.aclose()

    experiment = client.get_run(scope.run_id).info.experiment_id
    traces = {t.info.trace_id: t for t in client.search_traces(locations=[experiment], run_id=scope.run_id)}
    assert len(traces) == 4
    for prompt, result in zip(prompts, results, strict=True):
        meta = result["metadata"]
        trace = client.get_trace(meta["trace_id"])
        found = _feedback(trace)
        answered = dataset.answer(PROVIDERS[meta["answered_by"]], prompt)
        quality = found[(QUALITY, None)]
        assert quality.value == pytest.approx(answered.quality) == pytest.approx(meta["quality"])
        assert quality.source.source_type == "LLM_JUDGE" and quality.source.source_id == JUDGE_SOURCE_ID
        for index, name in enumerate(PROVIDERS):  # each call's own label, on its span
            label = found[(QUALITY, call_span_id(trace.info.trace_id.removeprefix("tr-"), index))]
            assert label.value == pytest.approx(dataset.answer(PROVIDERS[name], prompt).quality)
            assert label.metadata["provider"] == name
        assert found[(AGREEMENT, None)].value == pytest.approx(meta["agreement"])
        assert found[(CONFIDENCE, None)].value == pytest.approx(meta["confidence"])
        assert found[(AGREEMENT, None)].source.source_id == "orchestra.consensus.lexical"
        assert len(trace.info.assessments) == 5
        assert traces[meta["trace_id"]].info.assessments  # search_traces returns them too


def _record(request_id: str, quality: float | None, agreement: float | None) -> RequestRecord:
    now = time.time_ns()
    calls = [
        CallRecord("a", "model-a", now, now + 1, ok=True, quality=quality, content="x"),
        CallRecord("b", "model-b", now, now + 1, ok=True, quality=0.0, content="y"),
    ]
    return RequestRecord(
        request_id=request_id,
        run_key="k",
        start_ns=now,
        end_ns=now + 2,
        user_id="u",
        session_id=None,
        task_type="general",
        prompt="p",
        response="x",
        answered_by="a",
        calls=calls,
        quality=quality,
        confidence=agreement,
        consensus=None if agreement is None else {"method": "lexical", "agreement": agreement},
    )


def test_feedback_follows_what_the_record_knows():
    full = request_feedback(_record("1" * 32, 1.0, 0.5))
    assert sorted((f.name, f.span_id is None) for f in full) == [
        (CONFIDENCE, True),
        (AGREEMENT, True),
        (QUALITY, False),
        (QUALITY, False),
        (QUALITY, True),
    ]
    assert len({f.assessment_id for f in full}) == 5
    assert [f.assessment_id for f in full] == [
        f.assessment_id for f in request_feedback(_record("1" * 32, 1.0, 0.5))
    ]
    unlabelled = request_feedback(_record("2" * 32, None, None))
    assert unlabelled == []  # one labelled call alone is not repeated on its span


def test_a_restarted_writer_writing_a_batch_again_adds_no_assessment(tracking, client):
    store = MlflowStore(tracking)
    run_id = store.create_run("retry", run_key="retry", params={}, tags={})
    records = [_record(f"{i + 1:032x}", 0.5 * (i % 3), 0.25 * i) for i in range(6)]
    batch = [(seq, run_id, encode_record(record)) for seq, record in enumerate(records)]
    assert store.write_traces(run_id, records) == 6  # the first writer wrote them, then died unanswered

    restarted = TraceProcess(tracking)  # a new writer process gets the same batch from the journal
    try:
        result = restarted.write(batch, force=True)
    finally:
        restarted.close()
    assert result.error is None and result.refused == [] and sorted(result.written) == list(range(6))
    assert store.write_feedback(records) == 0
    for record in records:
        assessments = client.get_trace(record.trace_id).info.assessments
        expected = request_feedback(record)
        assert sorted(a.assessment_id for a in assessments) == sorted(f.assessment_id for f in expected)
        values = {(a.name, a.span_id): a.value for a in assessments}
        assert values == {(f.name, f.span_id): f.value for f in expected}
