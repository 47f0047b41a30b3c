"""The ledger behind cluster-wide limits (run as a Ray actor; here as the plain object it is)."""

from __future__ import annotations

import pytest

from orchestra.resilience.ledger import LimitsLedger
from tests.fake_clock import FakeClock

KEY = ("fake", "openai", "http://127.0.0.1:1")


def test_permits_are_granted_in_batches_on_a_window_lengthened_by_the_slack():
    clock = FakeClock(now=0.0)
    ledger = LimitsLedger(clock=clock, slack_s=1.0)
    now, first = ledger.grant(KEY, 5, requests=3, per_seconds=10)
    assert now == 0.0 and first == [0.0, 0.0, 0.0, 11.0, 11.0]  # a late permit still fits a window
    _, second = ledger.grant(KEY, 2, requests=3, per_seconds=10)
    assert second == [11.0, 22.0]
    ledger.give_back(KEY, [22.0])  # not used: it frees its place
    _, third = ledger.grant(KEY, 1, requests=3, per_seconds=10)
    assert third == [22.0]
    assert ledger.grants(KEY) == {"granted": [*first, *second, *third], "returned": [22.0], "calls": 3}
    assert ledger.keys() == [KEY]


def test_token_reservations_wait_for_the_window_and_leave_request_permits_alone():
    ledger = LimitsLedger(clock=FakeClock(now=0.0), slack_s=0.0)
    options = {"requests": 10, "token_limit": 100, "per_seconds": 60, "admissions": False}
    assert ledger.grant(KEY, 1, tokens=60, **options)[1] == [0.0]
    assert ledger.grant(KEY, 1, tokens=60, **options)[1] == [60.0]  # 120 tokens do not fit a window
    assert ledger.grant(KEY, 1, requests=10, per_seconds=60)[1] == [0.0]  # requests: still free


def test_allowances_never_add_up_to_more_than_the_limit():
    ledger = LimitsLedger()
    assert ledger.allowance("run:a", limit_usd=1.0, want=0.4, need=0.1) == (0.4, 0.0)
    assert ledger.allowance("run:a", limit_usd=1.0, want=0.4, need=0.1) == (0.4, 0.4)
    granted, committed = ledger.allowance("run:a", limit_usd=1.0, want=0.4, need=0.1)
    assert granted == pytest.approx(0.2) and committed == pytest.approx(0.8)  # what is left covers it
    assert ledger.allowance("run:a", limit_usd=1.0, want=0.4, need=0.1)[0] == 0.0  # refused
    ledger.give_back_allowance("run:a", 0.3)
    assert ledger.allowance("run:a", limit_usd=1.0, want=0.4, need=0.1)[0] == pytest.approx(0.3)
    assert ledger.committed("run:a") == pytest.approx(1.0)
