"""A part's rows built straight from journal data are the rows of the records it decodes to."""

from __future__ import annotations

import json

from orchestra.engine.records import CallRecord, RetriedError
from orchestra.tracking.codec import decode, decode_record, encode_record, record_dict
from orchestra.tracking.rows import row_from_data, rows_table, to_row
from tests.test_records_and_spans import record


def rows_both_ways(payload: bytes) -> tuple[dict, dict]:
    data = decode(payload)
    fast = row_from_data(data, "run-1")
    assert fast is not None
    return fast, to_row(decode_record(payload), "run-1")


def test_rows_from_data_equal_rows_from_records():
    retried = RetriedError("RateLimited", "429", 429, 0.25)
    variants = [
        record(),
        record(
            routing=None, consensus=None, response=None, status="error", error_type="X", error_message="e"
        ),
        record(
            calls=[CallRecord("a", "m-a", 1, 2, True, attempts=2, retried_errors=[retried], cache_hit=True)]
        ),
        record(calls=[], answered_by=None, providers_used=[], tags={"team": "x", "ünï": "cödé"}),
        record(prompt="caf\udce9 \x00", system_prompt="be brief"),  # replaced text, tagged
    ]
    for variant in variants:
        fast, slow = rows_both_ways(encode_record(variant))
        assert fast == slow
        assert list(fast) == list(slow)
    tables = [rows_table([rows_both_ways(encode_record(v))[i] for v in variants]) for i in (0, 1)]
    assert tables[0].equals(tables[1])


def test_data_of_an_earlier_version_is_left_to_the_record_path():
    old = record_dict(record())
    old["calls"] = [{**json.loads(json.dumps(old["calls"][0])), "extra": {"attempts": 3}}]
    assert row_from_data(json.loads(json.dumps(old, default=str)), "run-1") is None
    missing = json.loads(encode_record(record()))
    del missing["consensus_end_ns"]  # a record of version 2 had no consensus times
    assert row_from_data(missing, "run-1") is None
