"""process_request end to end over scripted providers, read back from a real MLflow store."""

from __future__ import annotations

import asyncio
import json

import pytest

from orchestra import (
    FunctionConnector,
    InsufficientResponses,
    InvalidRequest,
    ModelProviderNotFound,
    NoRouteFound,
    ProviderTimeout,
    TaskComplexity,
)
from orchestra.tracking.reader import read_request_table

METADATA_KEYS = {
    "request_id",
    "task_type",
    "complexity",
    "providers_used",
    "routing_reason",
    "consensus_applied",
    "consensus_method",
    "confidence",
    "processing_time_ms",
    "tokens",
    "cost_usd",
    "errors",
    "mlflow_run_id",
}


async def test_single_provider_answer_and_metadata(make_orchestra):
    orch = make_orchestra({"alpha": FunctionConnector("alpha", lambda r: f"alpha says {r.prompt}")})
    result = await orch.process_request("hello there", task_type="general", user_id="u1")
    assert result["response"] == "alpha says hello there"
    metadata = result["metadata"]
    assert set(metadata) >= METADATA_KEYS
    assert metadata["providers_used"] == ["alpha"]
    assert metadata["consensus_applied"] is False
    assert metadata["routing_reason"].startswith("rule 0")
    assert metadata["propensities"] == {"alpha": 1.0}
    assert metadata["tokens"]["total"] == metadata["tokens"]["input"] + metadata["tokens"]["output"] > 0
    assert metadata["mlflow_run_id"]


async def test_consensus_over_three_providers_picks_the_agreeing_answer(make_orchestra):
    answers = {
        "a": "The capital of France is Paris.",
        "b": "Paris is the capital of France.",
        "c": "I think it might be Lyon, a large city.",
    }
    orch = make_orchestra(
        {name: FunctionConnector(name, lambda r, text=text: text) for name, text in answers.items()},
        rules=[{"providers": ["c", "a", "b"], "require_consensus": True}],
    )
    result = await orch.process_request("Capital of France?", task_type="qa", user_id="u1")
    metadata = result["metadata"]
    assert metadata["consensus_applied"] is True
    assert metadata["consensus_method"] == "lexical"
    assert sorted(metadata["providers_used"]) == ["a", "b", "c"]
    assert result["response"] in (answers["a"], answers["b"])
    assert 0.0 < metadata["confidence"] <= 1.0


async def test_failover_to_the_next_rule_provider(make_orchestra):
    down = FunctionConnector("down", fail_always=True)
    backup = FunctionConnector("backup", lambda r: "from backup")
    orch = make_orchestra({"down": down, "backup": backup})
    result = await orch.process_request("hi", user_id="u1")
    metadata = result["metadata"]
    assert result["response"] == "from backup"
    assert metadata["providers_called"] == ["down", "backup"]
    assert metadata["providers_used"] == ["backup"]
    assert metadata["providers_failed"][0]["provider"] == "down"
    assert metadata["providers_failed"][0]["error_type"] == "ProviderUnavailable"
    assert metadata["providers_failed"][0]["attempts"] == 3  # retried twice, then failed over
    assert (down.calls, backup.calls) == (3, 1)


async def test_per_provider_timeout_is_enforced(make_orchestra):
    slow = FunctionConnector("slow", lambda r: "too late", delay_s=30.0)
    fast = FunctionConnector("fast", lambda r: "on time")
    with pytest.warns(DeprecationWarning, match="performance.models.slow.timeout"):  # the seed's spelling
        orch = make_orchestra(
            {"slow": slow, "fast": fast},
            performance={"models": {"slow": {"timeout": 0.05}}, "retry": {"max_attempts": 1}},
        )
    result = await orch.process_request("hi", user_id="u1")
    assert result["response"] == "on time"
    assert result["metadata"]["providers_failed"][0]["error_type"] == ProviderTimeout.__name__


async def test_request_deadline_bounds_retries_and_failover(make_orchestra):
    slow = FunctionConnector("slow", lambda r: "too late", delay_s=30.0)
    also_slow = FunctionConnector("also_slow", lambda r: "too late", delay_s=30.0)
    orch = make_orchestra({"slow": slow, "also_slow": also_slow})
    with pytest.raises(InsufficientResponses) as caught:
        await orch.process_request("hi", user_id="u1", timeout=0.2)
    assert {f.error_type for f in caught.value.failures} == {"ProviderTimeout"}
    assert slow.calls == 1  # no retry was started that could not finish in time


async def test_all_providers_failing_raises_and_is_still_logged(make_orchestra, tracking, client):
    orch = make_orchestra(
        {"x": FunctionConnector("x", fail_always=True), "y": FunctionConnector("y", fail_always=True)}
    )
    with pytest.raises(InsufficientResponses) as caught:
        await orch.process_request("hi", user_id="u1")
    error = caught.value
    assert [f.provider for f in error.failures] == ["x", "y"]
    assert error.request_id
    await orch.flush()
    run_id = orch.tracker.run_id(orch.current_run())
    table = read_request_table(tracking, run_id)
    row = table.filter(table["request_id"] == error.request_id).row(0, named=True)
    assert row["status"] == "error"
    assert row["error_type"] == "InsufficientResponses"
    assert row["providers_failed"] == ["x", "y"]
    trace = client.get_trace(f"tr-{error.request_id}")
    assert trace.info.state.value == "ERROR"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prompt": ""}, InvalidRequest),
        ({"prompt": "   "}, InvalidRequest),
        ({"prompt": "hi", "min_providers": 0}, InvalidRequest),
        ({"prompt": "hi", "min_providers": 5}, InvalidRequest),
        ({"prompt": "hi", "task_type": "unknown"}, NoRouteFound),
    ],
)
async def test_bad_requests_get_clear_errors_and_are_logged(make_orchestra, tracking, kwargs, error):
    orch = make_orchestra(
        {"a": FunctionConnector("a"), "b": FunctionConnector("b")},
        rules=[{"task_type": "known", "providers": ["a", "b"]}],
    )
    kwargs.setdefault("task_type", "known")
    with pytest.raises(error) as caught:
        await orch.process_request(user_id="u1", **kwargs)
    assert caught.value.request_id
    await orch.flush()
    table = read_request_table(tracking, orch.tracker.run_id(orch.current_run()))
    assert table.filter(table["request_id"] == caught.value.request_id)["error_type"].to_list() == [
        error.__name__
    ]


async def test_rule_naming_an_unregistered_provider(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a")}, rules=[{"task_type": "known", "providers": ["a"]}])
    orch.task_router.add_routing_rule({"task_type": "ghost", "providers": ["nowhere"]})
    with pytest.raises(ModelProviderNotFound, match="nowhere"):
        await orch.process_request("hi", task_type="ghost", user_id="u1")


async def test_min_providers_and_require_consensus_from_the_call(make_orchestra):
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, n=n: f"answer {n}") for n in "abc"}, rules=[{"providers": ["a"]}]
    )
    result = await orch.process_request("q", user_id="u1", require_consensus=True, min_providers=2)
    assert len(result["metadata"]["providers_used"]) >= 2
    assert result["metadata"]["consensus_applied"] is True
    assert "topped up" in result["metadata"]["routing_reason"]


async def test_complexity_override_selects_the_rule(make_orchestra):
    orch = make_orchestra(
        {"small": FunctionConnector("small", lambda r: "s"), "big": FunctionConnector("big", lambda r: "b")},
        rules=[{"complexity": "complex", "providers": ["big"]}, {"providers": ["small"]}],
    )
    simple = await orch.process_request("hi", user_id="u1", complexity_override=TaskComplexity.SIMPLE)
    hard = await orch.process_request("hi", user_id="u1", complexity_override="complex")
    assert (simple["response"], hard["response"]) == ("s", "b")
    assert hard["metadata"]["complexity"] == "complex"


async def test_every_request_is_logged_with_routing_calls_and_consensus(make_orchestra, tracking, client):
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, n=n: f"shared words {n}") for n in ("p", "q", "r")},
        rules=[{"providers": ["p", "q", "r"], "require_consensus": True}],
    )
    async with orch.run("logged-run", params={"arm": "three"}) as scope:
        results = [
            await orch.process_request(f"prompt {i}", task_type="t", user_id="alice", session_id="s1")
            for i in range(5)
        ]
    await orch.flush()
    run = client.get_run(scope.run_id)
    assert run.data.params["arm"] == "three"
    assert run.data.params["routing.rules"].startswith("[")
    assert run.data.metrics["requests"] == 5
    assert run.data.metrics["consensus_rate"] == 1.0
    assert run.info.status == "FINISHED"

    table = read_request_table(tracking, scope.run_id)
    assert table.height == 5
    assert set(table["request_id"]) == {r["metadata"]["request_id"] for r in results}
    row = table.row(0, named=True)
    assert row["user_id"] == "alice" and row["session_id"] == "s1"
    assert json.loads(row["propensities_json"]) == {"p": 1.0, "q": 1.0, "r": 1.0}
    assert row["consensus_method"] == "lexical"
    calls = json.loads(row["calls_json"])
    assert [c["provider"] for c in calls] == ["p", "q", "r"]

    experiment_id = client.get_run(scope.run_id).info.experiment_id
    traces = client.search_traces(locations=[experiment_id], run_id=scope.run_id, include_spans=False)
    assert len(traces) == 5
    trace = client.get_trace(results[0]["metadata"]["trace_id"])
    names = sorted(span.name for span in trace.data.spans)
    assert names == ["call p", "call q", "call r", "consensus", "orchestra.t", "route"]
    assert trace.info.trace_metadata["mlflow.trace.user"] == "alice"
    assert trace.info.trace_metadata["mlflow.trace.session"] == "s1"
    assert trace.info.request_preview and "prompt 0" in trace.info.request_preview


async def test_connector_bug_is_recorded_not_raised_when_others_answer(make_orchestra):
    def broken(request):
        raise KeyError("bug in user code")

    orch = make_orchestra(
        {"bad": FunctionConnector("bad", broken), "good": FunctionConnector("good", lambda r: "ok")}
    )
    result = await orch.process_request("hi", user_id="u1")
    assert result["response"] == "ok"
    assert "KeyError" in result["metadata"]["errors"][0]


async def test_max_concurrent_requests_bounds_requests_in_flight(make_orchestra):
    """With max_concurrent_requests=2, ten requests never have more than two in flight."""
    in_flight = peak = 0
    two_in = asyncio.Event()

    async def respond(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 2:
            two_in.set()
        await two_in.wait()  # the first holds its slot until a second request is in: no timing
        await asyncio.sleep(0)
        in_flight -= 1
        return "ok"

    orch = make_orchestra(
        {"slow": FunctionConnector("slow", respond)}, performance={"max_concurrent_requests": 2}
    )
    results = await asyncio.gather(*(orch.process_request(f"q{i}") for i in range(10)))
    assert [r["response"] for r in results] == ["ok"] * 10
    assert peak == 2
