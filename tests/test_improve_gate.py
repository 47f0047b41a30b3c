"""The write-back gate's parts: prompt splits, the power check, the decision and its replication
probability, config versions and rollback, and the schedule (with an injected clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

from orchestra import ConfigError
from orchestra.improve.gate import decide, power_check
from orchestra.improve.schedule import Schedule
from orchestra.improve.splits import split_prompts
from orchestra.improve.versions import history, rollback, versions


def test_splits_are_disjoint_stable_and_sized():
    prompts = [(f"prompt {i}", "qa") for i in range(2000)]
    split = split_prompts(prompts, select_fraction=0.2, confirm_fraction=0.5, seed=3)
    sizes = [len(split.fit), len(split.select), len(split.confirm)]
    assert sum(sizes) == 2000 and abs(sizes[2] - 1000) < 80 and abs(sizes[1] - 400) < 60
    assert not set(split.texts("fit")) & set(split.texts("confirm"))
    # a prompt's split does not depend on the other prompts or their order
    again = split_prompts(list(reversed(prompts[:500])), select_fraction=0.2, confirm_fraction=0.5, seed=3)
    assert set(again.texts("confirm")) == set(split.texts("confirm")) & {p for p, _ in prompts[:500]}
    other = split_prompts(prompts, select_fraction=0.2, confirm_fraction=0.5, seed=4)
    assert set(other.texts("confirm")) != set(split.texts("confirm"))
    with pytest.raises(ConfigError, match="must leave prompts to fit on"):
        split_prompts(prompts, select_fraction=0.5, confirm_fraction=0.5)


def test_power_check_is_the_one_sided_paired_mde():
    check = power_check(sd=0.5, n=200, alpha=0.05, power=0.8, required=0.15, basis="test")
    d = TTestPower().solve_power(nobs=200, alpha=0.05, power=0.8, alternative="larger")
    assert check.detectable == pytest.approx(float(np.asarray(d).item()) * 0.5) and check.adequate
    thin = power_check(sd=0.5, n=30, alpha=0.05, power=0.8, required=0.15, basis="test")
    assert not thin.adequate and "NOT enough" in str(thin)
    assert power_check(sd=0.5, n=101, alpha=0.05, power=0.8, required=0.15, basis="t").detectable > 0


def test_decision_is_non_inferiority_plus_a_gain():
    rng = np.random.default_rng(0)
    current = rng.random(300).round()
    cost = np.full(300, 0.01)
    same_but_cheaper = decide(current, current.copy(), cost, cost / 10, margin=0.05, confidence=0.95)
    assert same_but_cheaper.status == "accepted" and same_but_cheaper.gain == "cost"
    assert same_but_cheaper.p_non_inferior == 0.0 and same_but_cheaper.p_replicates == pytest.approx(1.0)

    candidate = np.where(rng.random(300) < 0.2, 1 - current, current)  # noisy, no better on average
    result = decide(current, candidate, cost, cost / 2, margin=0.05, confidence=0.95)
    differences = candidate - current
    expected = stats.ttest_1samp(differences, -0.05, alternative="greater").pvalue
    assert result.p_non_inferior == pytest.approx(expected)
    se = differences.std(ddof=1) / np.sqrt(300)
    assert result.lower_bound == pytest.approx(differences.mean() - stats.t.ppf(0.95, 299) * se)
    assert result.quality.effect == pytest.approx(differences.mean())
    assert (result.status == "accepted") == (expected < 0.05)

    worse = decide(current, np.zeros(300), cost, cost / 2, margin=0.05, confidence=0.95)
    assert worse.status == "rejected" and "may be worse" in worse.reason and worse.p_replicates < 0.01
    dearer = decide(current, current.copy(), cost, cost * 2, margin=0.05, confidence=0.95)
    assert dearer.status == "rejected" and "neither better" in dearer.reason
    barely = decide(current, current.copy(), cost, cost * 0.97, margin=0.05, confidence=0.95, min_saving=0.1)
    assert barely.status == "rejected" and "nor cheaper by 10% (saving 3.0%)" in barely.reason
    noise = decide(current, candidate, cost, cost, margin=0.05, confidence=0.95)  # no saving, no superiority
    assert noise.gain == "none" and noise.status == "rejected"

    thin = power_check(sd=0.5, n=30, alpha=0.05, power=0.8, required=0.15, basis="test")
    proposed = decide(current, current.copy(), cost, cost / 10, margin=0.05, confidence=0.95, power=thin)
    assert proposed.status == "proposed" and "PROPOSED, not applied" in proposed.reason


def test_replication_probability_is_the_predictive_probability():
    rng = np.random.default_rng(1)
    current = rng.random(400)
    candidate = current + rng.normal(0.03, 0.2, 400)  # better on average
    result = decide(current, candidate, np.ones(400), np.ones(400), margin=0.05, confidence=0.95)
    differences = candidate - current
    se = differences.std(ddof=1) / np.sqrt(400)
    assert result.gain == "quality"
    assert result.p_replicates == pytest.approx(stats.norm.cdf(differences.mean() / (np.sqrt(2) * se)))


def test_versions_keep_every_replaced_config_and_rollback_steps_back(tmp_path):
    from orchestra.improve import versions as module

    config = tmp_path / "config.yaml"
    config.write_text("version: 0\n")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for step in (1, 2):  # two write-backs, through the same path `write_back` takes
        module._replace(
            config, f"version: {step}\n", "write-back", start + timedelta(hours=step), evidence={}
        )
    assert [p.read_text() for p in versions(config)] == ["version: 0\n", "version: 1\n"]
    change = rollback(config, now=start + timedelta(hours=3))
    assert (
        config.read_text() == "version: 1\n" and "-version: 2" in change.diff and "+version: 1" in change.diff
    )
    assert change.previous.read_text() == "version: 2\n"  # the rolled-back config is kept too
    rollback(config, now=start + timedelta(hours=4))
    assert config.read_text() == "version: 0\n"
    with pytest.raises(ConfigError, match="no earlier version"):
        rollback(config)
    assert [h["action"] for h in history(config)] == ["write-back"] * 2 + ["rollback"] * 2


async def test_schedule_runs_on_the_interval_and_survives_a_failed_cycle():
    now = [0.0]
    starts: list[float] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async def cycle() -> None:
        starts.append(now[0])
        now[0] += 5.0  # each cycle takes 5 s of the fake clock
        if len(starts) == 2:
            raise RuntimeError("store down")

    schedule = Schedule(cycle, 3600.0, clock=lambda: now[0], sleep=sleep, max_cycles=4)
    assert await schedule.run() == 4
    assert starts == [0.0, 3600.0, 7200.0, 10800.0] and schedule.failures == 1

    slow_starts: list[float] = []

    async def slow() -> None:
        slow_starts.append(now[0])
        now[0] += 100.0

    now[0] = 0.0
    await Schedule(slow, 60.0, clock=lambda: now[0], sleep=sleep, max_cycles=3).run()
    assert slow_starts == [0.0, 100.0, 200.0]  # overran: the next starts at once, none skipped twice
    with pytest.raises(ValueError, match="positive"):
        Schedule(slow, 0.0)
    assert asyncio.iscoroutinefunction(Schedule.run)
