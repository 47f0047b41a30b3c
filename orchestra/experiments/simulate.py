"""A whole experiment on recorded answers, without the engine: for tests, benchmarks and planning.

    answers = {"control": arm_answers(table, "gpt-4-turbo"), "mixtral": arm_answers(table, "mixtral-8x7b")}
    outcome = replay_experiment("canary", settings, answers, seed=3)
    outcome.decision.outcome, outcome.requests

Traffic: each request comes from one of `users` users and asks one of the recorded prompts,
both drawn uniformly (seeded). The user is assigned by the same hash as live traffic (salted
with the seed, so each seed is a new randomisation), and the arm's answer to the prompt is
what that arm's config answers through `process_request` (a single-provider route answers with
that provider's recorded answer; a test checks the two agree). So the true difference between
two arms is the difference of their mean recorded outcomes over the prompts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from orchestra.config.experiments import CONTROL, ExperimentSettings
from orchestra.errors import ConfigError
from orchestra.experiments.assignment import assign
from orchestra.experiments.monitor import Decision, Monitor, MonitorLook, Observation
from orchestra.experiments.plan import Plan, plan_experiment


@dataclass(frozen=True)
class ReplayOutcome:
    decision: Decision
    requests: int  # every request served while the experiment ran
    looks: list[MonitorLook]
    plan: Plan


def arm_answers(table: pl.DataFrame, provider: str) -> dict[str, Observation]:
    """prompt -> the recorded outcome of `provider` (a `recorded_table`: prompt, provider,
    quality, cost_usd, latency_ms)."""
    rows = table.filter(pl.col("provider") == provider)
    if rows.is_empty():
        raise ConfigError(f"no recorded answers of {provider!r} in the table")
    return {
        prompt: Observation(quality, cost or 0.0, latency or 0.0, False)
        for prompt, quality, cost, latency in rows.select(
            "prompt", "quality", "cost_usd", "latency_ms"
        ).iter_rows()
    }


def true_difference(answers: dict[str, dict[str, Observation]], arm: str, metric: str = "quality") -> float:
    """The candidate's mean minus the control's over the prompts both answered."""
    prompts = sorted(set(answers[CONTROL]) & set(answers[arm]))

    def mean(side: str) -> float:
        values = [getattr(answers[side][p], metric) for p in prompts]
        return float(np.nanmean(np.array(values, dtype=float)))

    return mean(arm) - mean(CONTROL)


def traffic(prompts: list[str], *, seed: int, users: int) -> Iterator[tuple[str, str]]:
    """An endless stream of (user, prompt): each drawn uniformly, seeded."""
    rng = np.random.default_rng(seed)
    while True:
        yield f"user-{int(rng.integers(users))}", prompts[int(rng.integers(len(prompts)))]


def replay_experiment(
    name: str,
    settings: ExperimentSettings,
    answers: dict[str, dict[str, Observation]],
    *,
    seed: int,
    users: int = 5_000,
    plan: Plan | None = None,
    salt: str | None = None,
) -> ReplayOutcome:
    """Run the experiment on recorded answers until it decides (at the latest at the plan's
    maximum); `answers` maps every arm to its outcome per prompt. The assignment salt is
    `<salt or name>:<seed>` unless `salt` is given (the live experiment's is `salt or name`)."""
    missing = set(settings.shares()) - set(answers)
    if missing:
        raise ConfigError(f"no recorded answers for arm(s) {sorted(missing)}")
    prompts = sorted(set.intersection(*(set(a) for a in answers.values())))
    if not prompts:
        raise ConfigError("the arms have no recorded prompt in common")
    plan = plan or plan_experiment(settings)
    monitor = Monitor(settings, plan)
    salt = salt if salt is not None else f"{settings.salt or name}:{seed}"
    served = 0
    for user, prompt in traffic(prompts, seed=seed, users=users):
        if monitor.decision is not None:
            break
        assignment = assign(user, experiment=name, salt=salt, shares=monitor.shares)
        monitor.assigned(assignment.arm, user)
        served += 1
        if monitor.running(assignment.arm):
            monitor.record(assignment.arm, answers[assignment.arm][prompt])
        if monitor.due():
            monitor.look()
    assert monitor.decision is not None
    return ReplayOutcome(monitor.decision, served, monitor.looks, plan)
