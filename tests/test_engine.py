"""The request engine's interfaces: `RequestResult`, `RequestOptions`, `process_request_stream`,
the consensus `decide` method with its task context, and what the orchestrator records."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from orchestra import (
    ConsensusError,
    ConsensusOutcome,
    ConsensusStrategy,
    FunctionConnector,
    InvalidRequest,
    Orchestra,
    RequestOptions,
    RequestResult,
    RoutingDecision,
    TaskContext,
    TrackingSettings,
)
from orchestra.consensus import execution_check, structured_output
from orchestra.engine.options import OPTION_NAMES, RequestKnobs
from orchestra.engine.records import CallRecord
from orchestra.sandbox import CodeCheck

ORIGINAL_METADATA_KEYS = [
    "request_id", "task_type", "user_id", "session_id", "complexity", "complexity_score",
    "providers_used", "providers_called", "providers_failed", "calls", "answered_by", "model",
    "routing_strategy", "routing_reason", "propensities", "consensus_applied", "consensus_method",
    "confidence", "confidence_calibrated", "agreement", "low_agreement", "processing_time_ms",
    "latency_ms", "tokens", "cost_usd", "cache_hit", "quality", "errors", "mlflow_run_id", "run_key",
    "trace_id",
]  # fmt: skip
"""The keys of the dict `process_request` returned before `RequestResult`, in their order."""


def agreeing(*names: str) -> dict[str, FunctionConnector]:
    return {name: FunctionConnector(name, lambda r: "Paris is the capital of France.") for name in names}


async def test_result_is_typed_frozen_and_reads_as_the_original_dict(make_orchestra):
    connectors = agreeing("a", "b") | {"down": FunctionConnector("down", fail_always=True)}
    orch = make_orchestra(connectors, rules=[{"providers": ["down", "a", "b"], "require_consensus": True}])
    result = await orch.process_request("Capital of France?", user_id="u1")
    assert isinstance(result, RequestResult) and result.response == "Paris is the capital of France."
    meta = result.metadata
    assert isinstance(meta.routing, RoutingDecision) and meta.routing.chosen == ["down", "a", "b"]
    assert isinstance(meta.consensus, ConsensusOutcome) and meta.consensus.method == "lexical"
    assert all(isinstance(call, CallRecord) for call in meta.calls)
    assert [c.provider for c in meta.failed_calls] == ["down"] and meta.calls[0].attempts == 3
    assert meta.tokens.total == meta.tokens.input + meta.tokens.output > 0
    # the original shape, key for key
    assert list(meta) == ORIGINAL_METADATA_KEYS and list(result) == ["response", "metadata"]
    assert result["metadata"]["tokens"]["total"] == meta.tokens.total
    assert result["metadata"]["providers_failed"][0]["attempts"] == 3
    assert result["metadata"]["consensus_method"] == "lexical" and result.get("missing") is None
    plain = result.as_dict()
    assert json.loads(json.dumps(plain)) == plain and plain["metadata"] == dict(meta)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.response = "changed"  # type: ignore[misc]
    html = result._repr_html_()
    assert "Paris is the capital" in html and "down" in html and "lexical" in html


async def test_options_group_the_knobs_and_keywords_win(make_orchestra):
    orch = make_orchestra(agreeing("a"))
    options = RequestOptions(task_type="geo", user_id="alice", tags={"team": "x"})
    result = await orch.process_request("Capital of France?", options, user_id="bob")
    assert (result.metadata.task_type, result.metadata.user_id) == ("geo", "bob")
    assert orch.last_record is not None and orch.last_record.tags == {"team": "x"}
    with pytest.raises(TypeError, match=r"unknown option.*colour"):
        await orch.process_request("hi", colour="red")  # type: ignore[call-overload]
    with pytest.raises(InvalidRequest, match="options must be a RequestOptions"):
        await orch.process_request("hi", 42)  # type: ignore[call-overload]
    with pytest.warns(DeprecationWarning, match="task_type"):  # the original second positional
        legacy = await orch.process_request("hi", "geo")  # type: ignore[call-overload]
    assert legacy.metadata.task_type == "geo"
    assert set(RequestKnobs.__annotations__) == OPTION_NAMES


async def test_a_request_id_given_is_the_one_logged_and_a_malformed_one_is_refused(make_orchestra):
    orch = make_orchestra(agreeing("a"))
    given = "0123456789abcdef0123456789abcdef"  # a sweep's predicted id (tracking/request_ids.py)
    result = await orch.process_request("Capital of France?", request_id=given)
    assert result.metadata.request_id == given and result.metadata.trace_id == f"tr-{given}"
    assert orch.last_record is not None and orch.last_record.request_id == given
    with pytest.raises(InvalidRequest, match="request_id must be 32 lowercase hex digits") as refused:
        await orch.process_request("Capital of France?", request_id="req-1")
    # still logged, under an id of its own
    assert orch.last_record.request_id == refused.value.request_id not in (given, "req-1")
    assert orch.last_record.status == "error"


async def test_streaming_has_its_own_method_and_stream_true_still_works(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a", lambda r: "one two three")})
    stream = await orch.process_request_stream("count", user_id="u1")
    assert stream.metadata is None
    result = await stream.collect()
    assert isinstance(result, RequestResult) and result.response == "one two three"
    assert stream.metadata is not None and stream.metadata.answered_by == "a"
    with pytest.warns(DeprecationWarning, match="process_request_stream"):
        old = await orch.process_request("count", user_id="u1", stream=True)
    assert "".join([delta async for delta in old]) == "one two three"


class Scripted(ConsensusStrategy):
    """Low agreement first (so `ask_more` asks for another answer), then an error."""

    name = "scripted"

    def __init__(self) -> None:
        self.contexts: list[TaskContext] = []

    async def decide(self, responses, context):
        self.contexts.append(context)
        if len(self.contexts) > 1:
            raise ConsensusError("the second round fails")
        return ConsensusOutcome.pick(
            self.name, responses, 0, confidence=0.1, agreement=0.1, low_agreement=True
        )


async def test_an_error_after_more_answers_were_asked_for_is_logged_with_them(make_orchestra):
    orch = make_orchestra(
        agreeing("a", "b", "c"),
        rules=[{"providers": ["a", "b"], "require_consensus": True}],
        consensus={"low_agreement_policy": "ask_more"},
    )
    orch.consensus_manager.register_strategy("lexical", Scripted())  # the default strategy's name
    with pytest.raises(ConsensusError, match="second round") as caught:
        await orch.process_request("q", user_id="u1")
    record = orch.last_record
    assert record is not None and caught.value.request_id == record.request_id
    assert [c.provider for c in record.calls] == ["a", "b", "c"]  # c was asked, and is recorded
    assert record.status == "error" and record.consensus is None and record.consensus_start_ns > 0


class Recorder(ConsensusStrategy):
    """Picks the first answer and keeps the context it was given."""

    def __init__(self) -> None:
        self.contexts: list[TaskContext] = []

    async def decide(self, responses, context):
        self.contexts.append(context)
        return ConsensusOutcome.pick("recorder", responses, 0, confidence=1.0, agreement=1.0)


async def test_the_task_context_reaches_the_strategy_as_an_argument(make_orchestra):
    strategy = Recorder()
    orch = make_orchestra(
        agreeing("a", "b"),
        rules=[{"providers": ["a", "b"], "require_consensus": True}],
    )
    orch.consensus_manager.register_strategy("lexical", strategy)
    check = CodeCheck(tests=["assert f() == 1"])
    await orch.process_request("write f", task_type="code", user_id="u1", execution=check)
    with execution_check(CodeCheck(tests=["assert g() == 2"])) as ambient, structured_output(TaskContext):
        await orch.process_request("write g", task_type="code", user_id="u1")
    given, from_context = strategy.contexts
    assert (given.task_type, given.prompt, given.execution, given.schema) == ("code", "write f", check, None)
    assert from_context.execution is ambient and from_context.schema is TaskContext
    assert given.request_id != from_context.request_id


async def test_a_strategy_of_the_original_interface_answers_decide_too():
    class Longest(ConsensusStrategy):
        async def find_consensus(self, responses, task_context):
            return max(responses, key=lambda r: len(r.content))

        def calculate_confidence(self, responses):
            return 0.9

    from orchestra import ModelResponse

    answers = [ModelResponse(content=t, provider=p, model_name="m") for p, t in (("a", "hi"), ("b", "hello"))]
    outcome = await Longest().decide(answers, TaskContext())
    assert (outcome.chosen_provider, outcome.confidence, outcome.low_agreement) == ("b", 0.9, False)

    class Neither(ConsensusStrategy):
        pass

    with pytest.raises(TypeError, match="neither decide nor find_consensus"):
        await Neither().decide(answers, TaskContext())


CONFIG = {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["a"]}]}}


def in_folder(folder) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


async def test_construction_does_no_tracking_io_start_and_the_first_request_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    orch = Orchestra(CONFIG, tracking=TrackingSettings(trace_writer="thread"))  # ./mlruns, ./.orchestra
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "hi"))
    assert in_folder(tmp_path) == {"config"} and not orch.tracker.started
    assert orch.close().written == 0 and in_folder(tmp_path) == {"config"}  # nothing to write

    later = Orchestra(CONFIG, tracking=TrackingSettings(trace_writer="thread"))
    later.model_registry.register_connector("a", FunctionConnector("a", lambda r: "hi"))
    assert await later.start() is later and later.tracker.started
    assert (tmp_path / ".orchestra" / "spool").is_dir()
    await later.aclose()


async def test_the_first_request_is_in_the_journal_before_it_returns(tracking):
    orch = Orchestra(CONFIG, tracking=tracking.model_copy(update={"durability": "always"}))
    orch.model_registry.register_connector("a", FunctionConnector("a", lambda r: "hi"))
    assert not orch.tracker.started
    result = await orch.process_request("hello", user_id="u1")
    journals = list((Path(tracking.spool_dir) / "journal").glob("*.db"))
    with sqlite3.connect(journals[0]) as journal:  # `always`: committed before the call returned
        payloads = [row[0] for row in journal.execute("SELECT payload FROM entries WHERE kind = 'request'")]
    assert [json.loads(payload)["request_id"] for payload in payloads] == [result.request_id]
    await orch.aclose()
