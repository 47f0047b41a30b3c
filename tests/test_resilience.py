"""Resilience policies on their own: retries, circuit breaker, rate limiter, budgets, errors."""

from __future__ import annotations

import asyncio

import pytest

from orchestra.errors import (
    AuthenticationFailed,
    BadProviderRequest,
    BudgetExceeded,
    ConfigError,
    ProviderCoolingDown,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from orchestra.providers.http_errors import error_for_status, retry_after_seconds
from orchestra.resilience import (
    AttemptLog,
    Budget,
    CircuitBreaker,
    RateLimiter,
    RetryPolicy,
    forget_limiter,
    shared_limiter,
)
from orchestra.types import ModelRequest
from tests.fake_clock import FakeClock

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.001, max_delay_s=0.002)


Clock = FakeClock


async def test_retry_retries_retryable_errors_and_counts_attempts():
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProviderUnavailable("503", provider="p", status=503)
        return "ok"

    log = AttemptLog()
    assert await FAST.run(flaky, log=log) == "ok"
    assert (calls, log.attempts, len(log.failures)) == (3, 3, 2)
    assert log.failures[0].status == 503


async def test_retry_gives_up_on_non_retryable_errors_at_once():
    async def refused():
        raise AuthenticationFailed("401", provider="p", status=401)

    log = AttemptLog()
    with pytest.raises(AuthenticationFailed):
        await FAST.run(refused, log=log)
    assert log.attempts == 1


async def test_retry_honours_retry_after_and_stops_at_max_attempts():
    async def limited():
        raise RateLimited("429", provider="p", status=429, retry_after=2.0)

    log, clock = AttemptLog(), FakeClock()
    with pytest.raises(RateLimited):
        await FAST.run(limited, log=log, sleep=clock.sleep)
    assert log.attempts == 4
    assert [f.waited_s for f in log.failures] == [2.0, 2.0, 2.0] == clock.sleeps


async def test_retry_does_not_start_a_wait_past_the_deadline():
    async def limited():
        raise RateLimited("429", provider="p", status=429, retry_after=5.0)

    log = AttemptLog()
    deadline = asyncio.get_running_loop().time() + 1.0
    with pytest.raises(RateLimited):
        await FAST.run(limited, deadline=deadline, log=log)
    assert log.attempts == 1


def test_breaker_opens_after_threshold_then_probes_and_recovers():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=3, cooldown_s=10, clock=clock)
    failure = ProviderUnavailable("503", provider="p", status=503)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure(failure)
    assert breaker.state == "open"
    with pytest.raises(ProviderCoolingDown) as cooling:
        breaker.before_call()
    assert cooling.value.retry_after == pytest.approx(10)
    clock.now += 10
    assert breaker.before_call() is True  # the recovery probe
    with pytest.raises(ProviderCoolingDown):
        breaker.before_call()  # only one probe at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.before_call() is False


def test_breaker_failed_probe_reopens_with_a_longer_cooldown():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, cooldown_s=10, max_cooldown_s=15, clock=clock)
    breaker.record_failure(ProviderTimeout("t", provider="p"))
    clock.now += 10
    assert breaker.before_call() is True
    breaker.record_failure(ProviderTimeout("t", provider="p"))
    with pytest.raises(ProviderCoolingDown) as cooling:
        breaker.before_call()
    assert cooling.value.retry_after == pytest.approx(15)  # doubled, capped


def test_breaker_ignores_request_errors_and_leaves_retry_after_to_the_hold():
    clock = Clock()
    breaker = CircuitBreaker("p", failure_threshold=1, clock=clock)
    breaker.record_failure(BadProviderRequest("400", provider="p", status=400))
    assert breaker.state == "closed"
    breaker = CircuitBreaker("p", failure_threshold=100, clock=clock)
    breaker.record_failure(RateLimited("429", provider="p", status=429, retry_after=3))
    assert breaker.before_call() is False  # the endpoint's hold makes calls wait, not fail


async def test_limiter_never_admits_more_than_the_window_allows():
    clock = FakeClock(frozen=True)  # admissions are reserved ahead: their times are exact
    limiter = RateLimiter(requests=10, per_seconds=0.2, clock=clock, sleep=clock.sleep)

    async def one() -> float:
        async with await limiter.acquire() as permit:
            return permit.admitted_at

    times = sorted(await asyncio.gather(*(one() for _ in range(35))))
    for i in range(len(times) - 10):
        assert times[i + 10] - times[i] >= 0.2 - 1e-9  # any 11 admissions span more than a window
    assert times == pytest.approx([1000.0] * 10 + [1000.2] * 10 + [1000.4] * 10 + [1000.6] * 5)
    assert sorted(clock.sleeps) == pytest.approx([0.2] * 10 + [0.4] * 10 + [0.6] * 5)


async def test_limiter_concurrency_slots():
    limiter = RateLimiter(max_concurrent=3)
    running = peak = 0

    async def one():
        nonlocal running, peak
        async with await limiter.acquire():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3 and limiter.active == 0


async def test_limiter_cancelled_waiter_does_not_leak_a_slot():
    limiter = RateLimiter(max_concurrent=1)
    holder = await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    holder.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    permit = await asyncio.wait_for(limiter.acquire(), 1)
    permit.release()
    assert limiter.active == 0


async def test_limiter_tokens_per_window():
    clock = FakeClock(frozen=True)
    limiter = RateLimiter(tokens=1000, per_seconds=60, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire(600)
    second = await limiter.acquire(600)
    assert (first.admitted_at, second.admitted_at) == (1000.0, 1060.0)
    assert clock.sleeps == [60.0]  # waits until the first 600 leave the window
    with pytest.raises(BadProviderRequest, match="can never be admitted"):
        await limiter.acquire(tokens=5000)


def test_shared_limiter_is_one_object_per_key_and_never_reconfigured():
    key = ("test-shared", "openai", None)
    first = shared_limiter(key, requests=5)
    assert shared_limiter(key, requests=5, per_seconds=60) is first
    with pytest.raises(ConfigError, match=r"'test-shared' \(openai\) already has a rate limiter"):
        shared_limiter(key, requests=7)
    assert first.requests == 5  # the limiter in use is untouched
    assert forget_limiter(key) is first
    assert shared_limiter(key, requests=7) is not first


def test_budget_reserves_worst_case_and_refuses_before_the_call():
    budget = Budget(1.00, "run 'x'")
    first = budget.reserve(0.6, provider="p")
    with pytest.raises(BudgetExceeded, match=r"run 'x': budget \$1.0000 would be exceeded"):
        budget.reserve(0.5, provider="p")
    budget.settle(first, actual_usd=0.1)
    assert budget.spent_usd == pytest.approx(0.1) and budget.reserved_usd == 0
    budget.reserve(0.5, provider="p")  # fits now that the actual cost is known
    assert budget.remaining_usd == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (429, RateLimited, True),
        (408, ProviderUnavailable, True),
        (500, ProviderUnavailable, True),
        (503, ProviderUnavailable, True),
        (529, ProviderUnavailable, True),
        (401, AuthenticationFailed, False),
        (403, AuthenticationFailed, False),
        (400, BadProviderRequest, False),
        (404, BadProviderRequest, False),
    ],
)
def test_status_mapping(status, expected, retryable):
    error = error_for_status("p", status, "msg", {"Retry-After": "1.5"})
    assert type(error) is expected and error.retryable is retryable and error.status == status


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


async def test_a_passed_request_deadline_is_not_the_providers_failure():
    """A call made after its request's deadline raises before the provider is asked: the
    breaker stays closed and the rate limit keeps its slots."""
    from orchestra.providers.function import FunctionConnector
    from orchestra.resilience.guard import CallContext, ProviderGuard

    connector = FunctionConnector("p", lambda request: "ok")
    limiter = RateLimiter(requests=2, per_seconds=60)
    breaker = CircuitBreaker("p", failure_threshold=2, cooldown_s=10)
    guard = ProviderGuard("p", connector, retry=FAST, breaker=breaker, limiter=limiter)
    past = asyncio.get_running_loop().time() - 1.0
    for _ in range(3):
        with pytest.raises(ProviderTimeout, match="deadline has passed"):
            await guard.call(ModelRequest(prompt="hi"), CallContext(5.0, past, AttemptLog()))
    assert breaker.state == "closed" and connector.calls == 0
    future = asyncio.get_running_loop().time() + 30.0
    for _ in range(2):  # both slots of the limit are still free
        response = await guard.call(ModelRequest(prompt="hi"), CallContext(5.0, future, AttemptLog()))
        assert response.content == "ok"
    assert connector.calls == 2


def test_retry_delay_honours_retry_after_and_bounds_the_backoff():
    policy = RetryPolicy(initial_delay_s=0.5, max_delay_s=2.0, max_retry_after_s=10.0)
    assert policy.delay(1, RateLimited("slow down", provider="p", retry_after=3.0)) == 3.0
    assert policy.delay(1, RateLimited("slow down", provider="p", retry_after=99.0)) == 10.0
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (8, 2.0)):
        assert all(0.0 <= policy.delay(attempt, None) <= ceiling for _ in range(50))
