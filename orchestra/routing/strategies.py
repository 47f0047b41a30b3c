"""Routing strategies: given the allowed candidates, rank them and say how likely each was chosen.

- `rules`: the matched rule's order (deterministic);
- `performance_based`: a weighted score of quality, cost and latency from history, with
  exploration (Thompson sampling or epsilon-greedy) and a minimum-data rule;
- `cost_aware`: the cheapest candidate whose expected quality clears a target;
- `learned`: a policy fitted on logged data (see `orchestra.routing.learned`);
- `cascade`: the stages of a fitted cascade, cheapest first (see `orchestra.routing.cascade`);
- `random`: uniform, the baseline for experiments.

Every choice reports `propensities`: the probability that each candidate was in the chosen set,
so that another policy's value can be estimated later from the same logs, and whether it was
an exploring choice (`exploring`), so the exploration share can be followed.

Exploration ends: `performance_based` and `cost_aware` first give every candidate `min_samples`
observations (cold candidates are tried first, uniformly), then exploit; epsilon-greedy's
epsilon shrinks as sqrt(warm-up size / observations), and Thompson sampling's posteriors narrow.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from orchestra.errors import ConfigError
from orchestra.routing.cascade import CascadePolicy
from orchestra.routing.history import PerformanceHistory, ProviderStats
from orchestra.types import TaskComplexity


@dataclass(frozen=True)
class RouteContext:
    prompt: str
    task_type: str
    complexity: TaskComplexity
    candidates: list[str]
    k: int
    randomness: np.random.Generator | tuple[int, ...]
    """The decision's generator, or the seed it is built from on first use (the router passes
    its (seed, prompt hash, how often this prompt was routed))."""

    @cached_property
    def rng(self) -> np.random.Generator:
        """This decision's generator, built on first use: most strategies draw nothing, and
        seeding one costs more than the rest of a `rules` decision."""
        if isinstance(self.randomness, np.random.Generator):
            return self.randomness
        return np.random.default_rng(list(self.randomness))


@dataclass(slots=True)
class Choice:
    """Candidates in the order to try them (the first `k` are called), with scores and propensities."""

    ranked: list[str]
    scores: dict[str, float]
    propensities: dict[str, float]
    reason: str
    exploring: bool = False


class RoutingStrategy(ABC):
    name = "custom"

    @abstractmethod
    def choose(self, context: RouteContext) -> Choice:
        """Rank `context.candidates`; the first `context.k` are called."""


def _deterministic(ranked: list[str], k: int, scores: dict[str, float], reason: str) -> Choice:
    return Choice(ranked, scores, {p: 1.0 if i < k else 0.0 for i, p in enumerate(ranked)}, reason)


class RulesStrategy(RoutingStrategy):
    name = "rules"

    def choose(self, context: RouteContext) -> Choice:
        scores = {p: 1.0 for p in context.candidates}
        return _deterministic(list(context.candidates), context.k, scores, "the rule's order")


class RandomStrategy(RoutingStrategy):
    name = "random"

    def choose(self, context: RouteContext) -> Choice:
        ranked = [context.candidates[i] for i in context.rng.permutation(len(context.candidates))]
        share = min(context.k, len(ranked)) / len(ranked)
        return Choice(ranked, {p: share for p in ranked}, {p: share for p in ranked}, "uniformly at random")


@dataclass(frozen=True)
class Weights:
    quality: float = 1.0
    cost: float = 0.2
    latency: float = 0.1


class PerformanceStrategy(RoutingStrategy):
    """Score = quality x w_q - relative cost x w_c - relative latency x w_l, from history.

    Quality is the mean quality label where there are labels, else the success rate. Cost and
    latency are divided by the largest among the candidates. Candidates with fewer than
    `min_samples` observations are tried first (uniformly): history is not trusted before that.
    """

    name = "performance_based"

    def __init__(
        self,
        history: PerformanceHistory,
        *,
        weights: Weights = Weights(),
        exploration: str = "thompson",
        epsilon: float = 0.1,
        min_samples: int = 20,
        draws: int = 400,
        epsilon_decay: bool = True,
    ) -> None:
        if exploration not in ("thompson", "epsilon_greedy", "none"):
            raise ConfigError(
                f"routing.performance.exploration is {exploration!r}; allowed: thompson, epsilon_greedy, none"
            )
        self.history = history
        self.weights = weights
        self.exploration = exploration
        self.epsilon = epsilon
        self.min_samples = min_samples
        self.draws = draws
        self.epsilon_decay = epsilon_decay

    def stats(self, context: RouteContext) -> dict[str, ProviderStats]:
        return {
            p: self.history.stats(context.task_type, context.complexity.value, p, self.min_samples)
            for p in context.candidates
        }

    def choose(self, context: RouteContext) -> Choice:
        stats = self.stats(context)
        cold = [p for p in context.candidates if stats[p].n < self.min_samples]
        if cold:
            return warm_up(context, cold, self.min_samples)
        expected = self._utility(context.candidates, stats)
        if self.exploration == "thompson":
            return self._thompson(context, stats, expected)
        ranked = sorted(context.candidates, key=lambda p: -expected[p])
        if self.exploration == "epsilon_greedy":
            observations = sum(stats[p].n for p in context.candidates)
            return self._epsilon_greedy(
                context, ranked, expected, self.current_epsilon(observations, len(ranked))
            )
        return _deterministic(ranked, context.k, expected, "highest expected score from history")

    def _utility(self, providers: list[str], stats: dict[str, ProviderStats]) -> dict[str, float]:
        costs = {p: stats[p].cost_mean_usd for p in providers}
        latencies = {p: stats[p].latency_p50_ms for p in providers}
        max_cost = max((c for c in costs.values() if not math.isnan(c)), default=0.0) or 1.0
        max_latency = max((x for x in latencies.values() if not math.isnan(x)), default=0.0) or 1.0
        utility = {}
        for p in providers:
            utility[p] = (
                self.weights.quality * _quality(stats[p])
                - self.weights.cost * _zero_nan(costs[p]) / max_cost
                - self.weights.latency * _zero_nan(latencies[p]) / max_latency
            )
        return utility

    def current_epsilon(self, observations: int, candidates: int) -> float:
        """Epsilon after `observations` among `candidates`: the configured epsilon right after the
        warm-up (min_samples each), shrinking as sqrt(warm-up size / observations)."""
        if not self.epsilon_decay:
            return self.epsilon
        warm_up_size = self.min_samples * candidates
        return self.epsilon * math.sqrt(min(1.0, warm_up_size / max(observations, 1)))

    def _epsilon_greedy(
        self, context: RouteContext, ranked: list[str], expected: dict[str, float], epsilon: float
    ) -> Choice:
        n, k = len(ranked), min(context.k, len(ranked))
        explore = context.rng.random() < epsilon
        if explore:
            ranked = [ranked[i] for i in context.rng.permutation(n)]
        greedy = set(sorted(expected, key=lambda p: -expected[p])[:k])
        propensities = {p: (1 - epsilon) * (p in greedy) + epsilon * k / n for p in ranked}
        reason = (
            f"exploring (epsilon-greedy, epsilon {epsilon:.3f})"
            if explore
            else f"highest expected score (epsilon-greedy, epsilon {epsilon:.3f})"
        )
        return Choice(ranked, expected, propensities, reason, exploring=explore and set(ranked[:k]) != greedy)

    def _thompson(
        self, context: RouteContext, stats: dict[str, ProviderStats], expected: dict[str, float]
    ) -> Choice:
        providers = context.candidates
        k = min(context.k, len(providers))

        def sample(rng: np.random.Generator, size: int) -> np.ndarray:
            draws = np.empty((size, len(providers)))
            for j, p in enumerate(providers):
                a, b = _beta(stats[p])
                quality = rng.beta(a, b, size)
                base = expected[p] - self.weights.quality * _quality(stats[p])
                draws[:, j] = base + self.weights.quality * quality
            return draws

        pick = sample(context.rng, 1)[0]
        ranked = [providers[j] for j in np.argsort(-pick, kind="stable")]
        # Inclusion probabilities by Monte Carlo from an independent, seeded stream.
        simulated = sample(np.random.default_rng(context.rng.integers(2**63)), self.draws)
        top = np.argsort(-simulated, axis=1, kind="stable")[:, :k]
        counts = np.bincount(top.ravel(), minlength=len(providers)) / self.draws
        propensities = {p: float(counts[j]) for j, p in enumerate(providers)}
        greedy = set(sorted(providers, key=lambda p: -expected[p])[:k])
        return Choice(
            ranked,
            expected,
            propensities,
            "Thompson sampling on history",
            exploring=set(ranked[:k]) != greedy,
        )


class CostAwareStrategy(RoutingStrategy):
    """The cheapest candidate whose expected quality clears `target_quality` (else the best).

    From a cold start, candidates with fewer than `min_samples` observations are tried first
    (uniformly at random): without that, the first choice would be the only one ever observed."""

    name = "cost_aware"

    def __init__(self, history: PerformanceHistory, *, target_quality: float, min_samples: int = 20) -> None:
        self.history = history
        self.target_quality = target_quality
        self.min_samples = min_samples

    def choose(self, context: RouteContext) -> Choice:
        stats = {
            p: self.history.stats(context.task_type, context.complexity.value, p, self.min_samples)
            for p in context.candidates
        }
        cold = [p for p in context.candidates if stats[p].n < self.min_samples]
        if cold:
            return warm_up(context, cold, self.min_samples)
        known = list(context.candidates)
        qualities = {p: _quality(stats[p]) for p in known}
        clearing = sorted(
            (p for p in known if qualities[p] >= self.target_quality),
            key=lambda p: (stats[p].cost_mean_usd, -qualities[p]),
        )
        rest = sorted((p for p in known if p not in clearing), key=lambda p: -qualities[p])
        ranked = clearing + rest
        if clearing:
            reason = f"cheapest with expected quality >= {self.target_quality:g}"
        else:
            reason = f"no candidate clears {self.target_quality:g}: the best expected quality"
        scores = {p: qualities.get(p, float("nan")) for p in ranked}
        return _deterministic(ranked, context.k, scores, reason)


class LearnedPolicy(Protocol):
    """What the `learned` strategy needs: expected utility per candidate for one prompt."""

    def predict(
        self, prompt: str, task_type: str, complexity: str, candidates: list[str]
    ) -> dict[str, float]: ...


class LearnedStrategy(RoutingStrategy):
    """Ranks candidates by a fitted policy's predicted score (deterministic: propensity 1/0)."""

    name = "learned"

    def __init__(self, policy: LearnedPolicy | None = None) -> None:
        self.policy = policy

    def choose(self, context: RouteContext) -> Choice:
        if self.policy is None:
            raise ConfigError(
                "routing.default_strategy is 'learned' but no policy is set: "
                "set routing.learned.policy (a folder written by orchestra improve or "
                "KNNRoutingPolicy.save) or call task_router.set_learned_policy(policy)"
            )
        scores = self.policy.predict(
            context.prompt, context.task_type, context.complexity.value, context.candidates
        )
        ranked = sorted(context.candidates, key=lambda p: -scores.get(p, float("-inf")))
        return _deterministic(
            ranked,
            context.k,
            {p: float(scores.get(p, float("nan"))) for p in ranked},
            "highest predicted score (learned policy)",
        )


class CascadeStrategy(RoutingStrategy):
    """The cascade's stages in calling order (deterministic). The engine calls them one after
    another and stops at the first accepted answer (`orchestra.engine.cascade`)."""

    name = "cascade"

    def __init__(self, policy: CascadePolicy | None = None) -> None:
        self.policy = policy

    def choose(self, context: RouteContext) -> Choice:
        if self.policy is None:
            raise ConfigError(
                "routing.default_strategy is 'cascade' but no cascade policy is set: set "
                "routing.cascade.policy (a folder written by orchestra improve or CascadePolicy.save) "
                "or call task_router.set_cascade_policy(policy)"
            )
        stages = [p for p in self.policy.stages if p in context.candidates]
        if not stages:
            raise ConfigError(
                f"none of the cascade's stages {self.policy.stages} is allowed here "
                f"(candidates: {context.candidates})"
            )
        ranked = stages + [p for p in context.candidates if p not in stages]
        scores = {p: float(len(ranked) - i) for i, p in enumerate(ranked)}
        return _deterministic(ranked, 1, scores, f"cascade {' -> '.join(stages)}")


def warm_up(context: RouteContext, cold: list[str], min_samples: int) -> Choice:
    """Cold candidates first, in random order; exact inclusion probabilities."""
    order = [cold[i] for i in context.rng.permutation(len(cold))]
    ranked = order + [p for p in context.candidates if p not in cold]
    k = min(context.k, len(ranked))
    if k <= len(cold):
        propensities = {p: (k / len(cold) if p in cold else 0.0) for p in ranked}
    else:
        propensities = {p: 1.0 if p in cold else (k - len(cold)) / (len(ranked) - len(cold)) for p in ranked}
    reason = f"warming up: {len(cold)} candidate(s) with fewer than {min_samples} observations"
    return Choice(ranked, {p: float("nan") for p in ranked}, propensities, reason, exploring=True)


def _quality(stats: ProviderStats) -> float:
    return stats.quality_mean if stats.quality_mean is not None else stats.success_rate


def _beta(stats: ProviderStats) -> tuple[float, float]:
    """Beta posterior of quality (or success when there are no labels) from decayed counts."""
    if stats.quality_weight > 0:
        return 1.0 + stats.quality_sum, 1.0 + stats.quality_weight - stats.quality_sum
    successes = stats.success_rate * stats.weight
    return 1.0 + successes, 1.0 + stats.weight - successes


def _zero_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value
