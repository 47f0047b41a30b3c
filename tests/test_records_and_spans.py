"""Request records: JSON round trip (the spool format), table rows, and trace spans."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest
from mlflow.entities import SpanStatusCode

from orchestra.analysis.requests import calls_table
from orchestra.analysis.winrate import win_rate
from orchestra.engine.records import CallRecord, RequestRecord, RetriedError
from orchestra.redact import MASK, SecretRegistry
from orchestra.routing.history import PerformanceHistory
from orchestra.tracking.codec import call_dict, call_from_dict, decode_record, record_dict
from orchestra.tracking.rows import ROW_VERSION, rows_table, to_row
from orchestra.tracking.spans import request_spans


def record(**changes) -> RequestRecord:
    base = RequestRecord(
        request_id="0123456789abcdef0123456789abcdef",
        run_key="k",
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_005_000_000,
        user_id="alice",
        session_id="s1",
        task_type="qa",
        prompt="What is 2+2?",
        response="4",
        routing={
            "strategy": "rules",
            "chosen": ["a", "b"],
            "candidate_scores": {"a": 1.0, "b": 1.0},
            "propensities": {"a": 1.0, "b": 1.0},
            "complexity": "simple",
            "complexity_score": 0.1,
            "reason": "rule 0",
        },
        calls=[
            CallRecord(
                "a",
                "m-a",
                1,
                2,
                True,
                latency_ms=10,
                input_tokens=3,
                output_tokens=1,
                cost_usd=0.5,
                content="4",
                quality=1.0,
            ),
            CallRecord(
                "b", None, 1, 3, False, latency_ms=20, error_type="ProviderTimeout", error_message="slow"
            ),
        ],
        consensus={"method": "lexical", "providers": ["a"], "agreement": 1.0, "low_agreement": False},
        answered_by="a",
        providers_used=["a"],
        cost_usd=0.5,
        quality=1.0,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_json_round_trip_is_lossless():
    original = record()
    restored = decode_record(json.loads(json.dumps(record_dict(original))))
    assert restored == original


def test_row_flattens_routing_calls_and_consensus():
    row = to_row(record(), "run-1")
    assert row["run_id"] == "run-1" and row["trace_id"] == "tr-0123456789abcdef0123456789abcdef"
    assert row["providers_called"] == ["a", "b"] and row["providers_failed"] == ["b"]
    assert row["answered_model"] == "m-a"
    assert row["consensus_applied"] and row["consensus_method"] == "lexical"
    assert json.loads(row["propensities_json"]) == {"a": 1.0, "b": 1.0}
    table = rows_table([row, to_row(record(request_id="f" * 32, routing=None, consensus=None), None)])
    assert table.num_rows == 2 and table.column("consensus_applied").to_pylist() == [True, False]


def test_calls_have_typed_fields_in_the_row_and_the_trace():
    retried = RetriedError("RateLimited", "429", 429, 0.25)
    call = CallRecord("a", "m-a", 1, 2, True, attempts=2, retried_errors=[retried], cache_hit=True)
    row = to_row(record(calls=[call]), None)
    assert row["row_version"] == ROW_VERSION == 3
    (stored,) = json.loads(row["calls_json"])
    assert (stored["attempts"], stored["cache_hit"], stored["rate_limit_wait_ms"]) == (2, True, 0.0)
    assert stored["retried_errors"] == [
        {"error_type": "RateLimited", "message": "429", "status": 429, "waited_s": 0.25}
    ]
    assert call_from_dict(stored) == call
    span = request_spans(record(calls=[call]))[2]
    assert span.get_attribute("orchestra.attempts") == 2 and span.get_attribute("orchestra.cache_hit") is True
    assert span.get_attribute("orchestra.status") is None  # only what happened is an attribute


def test_rows_and_journal_payloads_of_version_1_are_still_read():
    """Before typed fields, a call's extras sat in an `extra` dict (row_version 1, older journals)."""
    old_call = {
        "provider": "a", "model": "m", "start_ns": 1, "end_ns": 2, "ok": True, "latency_ms": 5.0,
        "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.0, "error_type": None, "error_message": None,
        "quality": 1.0, "confidence": None, "content": "4", "wave": 0,
        "extra": {"attempts": 3, "cache_hit": True, "retried_errors": [
            {"error_type": "RateLimited", "message": "429", "status": 429, "waited_s": 0.5}
        ]},
    }  # fmt: skip
    call = call_from_dict(old_call)
    assert (call.attempts, call.cache_hit, call.retried_errors[0].status) == (3, True, 429)
    old_record = record_dict(record())
    old_record["calls"] = [old_call]
    assert decode_record(json.dumps(old_record)).calls == [call]
    frame = pl.DataFrame(
        {
            "request_id": ["x", "y"],
            "timestamp": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
            "task_type": ["qa", "qa"],
            "complexity": ["simple", "simple"],
            "calls_json": [json.dumps([old_call]), json.dumps([call_dict(call)])],
        }
    )
    calls = calls_table(frame)
    assert calls["attempts"].to_list() == [3, 3] and calls["cache_hit"].to_list() == [True, True]
    assert "extra" not in calls.columns
    history = PerformanceHistory.from_frame(frame, half_life_hours=None)
    assert history.stats("qa", "simple", "a").n == 0  # cache hits say nothing about the provider


def test_spans_are_deterministic_and_carry_status_usage_and_user():
    spans = request_spans(record())
    again = request_spans(record())
    assert [s.span_id for s in spans] == [s.span_id for s in again]
    names = [s.name for s in spans]
    assert names == ["orchestra.qa", "route", "call a", "call b", "consensus"]
    root, _, call_a, call_b, _ = spans
    assert root.parent_id is None and all(s.parent_id == root.span_id for s in spans[1:])
    assert root.get_attribute("user.id") == "alice" and root.get_attribute("session.id") == "s1"
    assert call_a.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 3,
        "output_tokens": 1,
        "total_tokens": 4,
    }
    assert call_b.status.status_code == SpanStatusCode.ERROR
    assert {s.trace_id for s in spans} == {"tr-0123456789abcdef0123456789abcdef"}


def test_failed_request_root_span_is_an_error():
    root = request_spans(record(status="error", error_type="InsufficientResponses", error_message="none"))[0]
    assert root.status.status_code == SpanStatusCode.ERROR
    assert "InsufficientResponses" in root.status.description


def test_redaction_masks_registered_values_and_key_patterns():
    secrets = SecretRegistry()
    secrets.register("my-very-private-token")
    secrets.register("short")  # too short to be a credential: ignored
    text = (
        "a my-very-private-token b sk-ant-api03-abcdefgh c AIzaSyA1234567890abcdefghijkl "
        "Bearer abcdefghijklmnopqrstu"
    )
    redacted = secrets.redact(text)
    assert "my-very-private-token" not in redacted and "sk-ant" not in redacted and "AIza" not in redacted
    assert "abcdefghijklmnopqrstu" not in redacted
    assert redacted.count(MASK) == 4
    assert secrets.redact("short words stay") == "short words stay"
    assert secrets.redact_obj({"k": ["sk-proj-abcdefghijklmnopqrstuv"]}) == {"k": [MASK]}


def test_win_rate_matches_a_scipy_t_interval():
    from scipy import stats

    scores = [1, 0, 0.5, 1, 0, 0, 1, 0, 0, 0]
    result = win_rate(scores)
    mean = sum(scores) / len(scores)
    low, high = stats.t.interval(0.95, len(scores) - 1, loc=mean, scale=stats.sem(scores))
    assert result.percent == pytest.approx(mean * 100)
    assert (result.low, result.high) == pytest.approx((low * 100, high * 100))
    assert win_rate([None, 1.0, float("nan")]).n == 1
    with pytest.raises(ValueError):
        win_rate([None])
