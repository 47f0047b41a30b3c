"""Routing strategies, history, evaluators, and the propensities logged with every decision."""

from __future__ import annotations

import json
import time

import numpy as np
import polars as pl
import pytest

from orchestra import ConfigError, FunctionConnector, Orchestra, TaskComplexity, TaskRouter
from orchestra.config.schema import RoutingSettings
from orchestra.routing.evaluators import EmbeddingComplexityEvaluator, LLMComplexityEvaluator
from orchestra.routing.history import PerformanceHistory
from orchestra.routing.strategies import (
    CostAwareStrategy,
    PerformanceStrategy,
    RouteContext,
)
from orchestra.tracking.reader import read_request_table
from tests.conftest import scripted_config

PROVIDERS = ["cheap", "good", "slow"]


def filled_history(n: int = 50) -> PerformanceHistory:
    """cheap: quality 0.3, $0.001; good: quality 0.8, $0.01; slow: quality 0.6, $0.002, 2 s."""
    history = PerformanceHistory(half_life_hours=None)
    rng = np.random.default_rng(0)
    for _ in range(n):
        history.add(
            "qa",
            "simple",
            "cheap",
            ok=True,
            latency_ms=100,
            cost_usd=0.001,
            quality=float(rng.random() < 0.3),
        )
        history.add(
            "qa", "simple", "good", ok=True, latency_ms=300, cost_usd=0.010, quality=float(rng.random() < 0.8)
        )
        history.add(
            "qa",
            "simple",
            "slow",
            ok=True,
            latency_ms=2000,
            cost_usd=0.002,
            quality=float(rng.random() < 0.6),
        )
    return history


def context(k: int = 1, seed: int = 0, candidates: list[str] | None = None) -> RouteContext:
    return RouteContext(
        "q", "qa", TaskComplexity.SIMPLE, candidates or PROVIDERS, k, np.random.default_rng(seed)
    )


def router(strategy: str, history: PerformanceHistory | None = None, **routing) -> TaskRouter:
    settings = RoutingSettings(default_strategy=strategy, rules=[{"providers": PROVIDERS}], **routing)
    return TaskRouter(settings, provider_names=lambda: list(PROVIDERS), history=history, seed=7)


def test_history_statistics_decay_and_backoff():
    history = PerformanceHistory(half_life_hours=1.0, window_hours=24)
    now = time.time()
    history.add("qa", "simple", "p", ok=True, latency_ms=100, cost_usd=0.1, quality=1.0, at=now)
    history.add("qa", "simple", "p", ok=False, latency_ms=900, cost_usd=0.0, quality=None, at=now - 3600)
    history.add("qa", "simple", "p", ok=True, latency_ms=100, cost_usd=0.1, quality=0.0, at=now - 48 * 3600)
    stats = history.stats("qa", "simple", "p")
    assert stats.n == 2  # the 48-hour-old call is outside the window
    assert stats.success_rate == pytest.approx(1.0 / 1.5, rel=1e-3)  # weights 1 and 0.5
    assert stats.quality_mean == pytest.approx(1.0) and stats.latency_p50_ms == 100
    assert history.stats("qa", "complex", "p").level == "task"  # backs off to the task type
    assert history.stats("other", "simple", "p").level == "all"
    assert history.stats("qa", "simple", "unknown").n == 0


def test_performance_strategy_warms_up_cold_providers_first():
    history = filled_history()
    strategy = PerformanceStrategy(history, min_samples=20)
    choice = strategy.choose(context(candidates=["good", "brand-new"]))
    assert choice.ranked[0] == "brand-new" and choice.propensities == {"brand-new": 1.0, "good": 0.0}
    assert "warming up" in choice.reason


def test_performance_strategy_prefers_the_best_score_and_explores():
    strategy = PerformanceStrategy(filled_history(), min_samples=20, exploration="thompson")
    picks = [strategy.choose(context(seed=s)).ranked[0] for s in range(200)]
    assert picks.count("good") > 150 and picks.count("cheap") < 20
    choice = strategy.choose(context(seed=1))
    assert sum(choice.propensities.values()) == pytest.approx(1.0)
    assert choice.propensities["good"] > 0.5 and max(choice.scores, key=choice.scores.get) == "good"


def test_thompson_is_deterministic_for_a_seed():
    strategy = PerformanceStrategy(filled_history(), min_samples=20)
    first = [strategy.choose(context(seed=s)).ranked for s in range(20)]
    again = [strategy.choose(context(seed=s)).ranked for s in range(20)]
    assert first == again


def test_epsilon_greedy_propensities_are_exact():
    strategy = PerformanceStrategy(
        filled_history(), min_samples=20, exploration="epsilon_greedy", epsilon=0.3, epsilon_decay=False
    )
    choice = strategy.choose(context(seed=3))
    assert choice.propensities["good"] == pytest.approx(0.7 + 0.3 / 3)
    assert choice.propensities["cheap"] == pytest.approx(0.1)


def test_epsilon_decays_with_evidence_and_propensities_follow():
    """150 observations over 3 candidates after a warm-up of 3 x 20: epsilon x sqrt(60 / 150)."""
    strategy = PerformanceStrategy(
        filled_history(), min_samples=20, exploration="epsilon_greedy", epsilon=0.3
    )
    epsilon = 0.3 * (60 / 150) ** 0.5
    choice = strategy.choose(context(seed=3))
    assert choice.propensities["good"] == pytest.approx(1 - epsilon + epsilon / 3)
    assert choice.propensities["cheap"] == pytest.approx(epsilon / 3)
    assert strategy.current_epsilon(60, 3) == 0.3  # right after the warm-up
    assert strategy.current_epsilon(6000, 3) == pytest.approx(0.03)  # 100x the evidence: a tenth
    longer = PerformanceStrategy(
        filled_history(500), min_samples=20, exploration="epsilon_greedy", epsilon=0.3
    )
    shares = [
        np.mean([s.choose(context(seed=seed)).exploring for seed in range(400)]) for s in (strategy, longer)
    ]
    assert shares[0] > shares[1]  # exploration share falls as evidence accumulates


def test_cost_weight_changes_the_choice():
    from orchestra.routing.strategies import Weights

    frugal = PerformanceStrategy(
        filled_history(), min_samples=20, exploration="none", weights=Weights(1.0, 2.0, 0.0)
    )
    assert frugal.choose(context()).ranked[0] == "slow"  # 0.6 quality at a fifth of the cost


def test_cost_aware_explores_from_a_cold_start_then_stops():
    """From no history, every candidate gets min_samples observations (tried first, at random),
    then the cheapest that clears the target is chosen every time."""
    history = PerformanceHistory(half_life_hours=None)
    strategy = CostAwareStrategy(history, target_quality=0.5, min_samples=5)
    quality = {"cheap": 0.3, "good": 0.8, "slow": 0.6}
    cost = {"cheap": 0.001, "good": 0.01, "slow": 0.002}
    picks, exploring = [], []
    for seed in range(60):
        choice = strategy.choose(context(seed=seed))
        pick = choice.ranked[0]
        picks.append(pick)
        exploring.append(choice.exploring)
        assert sum(choice.propensities.values()) == pytest.approx(1.0)
        history.add("qa", "simple", pick, ok=True, latency_ms=100, cost_usd=cost[pick], quality=quality[pick])
    assert all(picks.count(p) >= 5 for p in PROVIDERS)  # everyone got its min_samples
    assert exploring[:3] == [True] * 3 and not any(exploring[20:])  # exploration ended
    assert set(picks[20:]) == {"slow"}  # cheapest that clears 0.5


def test_cost_aware_picks_the_cheapest_that_clears_the_target():
    history = filled_history()
    assert CostAwareStrategy(history, target_quality=0.5).choose(context()).ranked[0] == "slow"
    assert CostAwareStrategy(history, target_quality=0.7).choose(context()).ranked[0] == "good"
    strict = CostAwareStrategy(history, target_quality=0.99).choose(context())
    assert strict.ranked[0] == "good" and "no candidate clears" in strict.reason


async def test_random_strategy_is_seeded_and_uniform():
    first = [(await router("random").evaluate_and_route(f"p{i}", "qa")).chosen for i in range(30)]
    second = [(await router("random").evaluate_and_route(f"p{i}", "qa")).chosen for i in range(30)]
    assert first == second and len({c[0] for c in first}) == 3
    decision = await router("random").evaluate_and_route("x", "qa")
    assert decision.propensities == pytest.approx({p: 1 / 3 for p in PROVIDERS})


async def test_learned_strategy_needs_a_policy_then_uses_it():
    learned = router("learned")
    with pytest.raises(ConfigError, match="no policy is set"):
        await learned.evaluate_and_route("x", "qa")

    class PreferSlow:
        def predict(self, prompt, task_type, complexity, candidates):
            return {p: (1.0 if p == "slow" else 0.0) for p in candidates}

    learned.set_learned_policy(PreferSlow())
    decision = await learned.evaluate_and_route("x", "qa")
    assert decision.chosen == ["slow"] and decision.strategy == "learned"


async def test_router_uses_history_and_reports_the_strategy():
    decision = await router("performance_based", filled_history()).evaluate_and_route(
        "short question", "qa", complexity_override="simple"
    )
    assert decision.strategy == "performance_based" and "Thompson" in decision.reason
    assert set(decision.propensities) == set(PROVIDERS)


async def test_embedding_evaluator_votes_with_nearest_examples():
    table = pl.DataFrame(
        {
            "prompt": [
                "What is 2 + 2?",
                "Name a colour.",
                "Say hello.",
                "What day is it today?",
                "Design a distributed consensus protocol and prove its safety under partitions.",
                "Derive the closed-form solution of this PDE and analyse its stability in depth.",
                "Write a compiler optimisation pass and argue for its correctness formally.",
            ],
            "complexity": ["simple"] * 4 + ["complex"] * 3,
        }
    )
    evaluator = EmbeddingComplexityEvaluator.fit(table, k=3)
    assert await evaluator.evaluate("What is 3 + 5?") == TaskComplexity.SIMPLE
    hard = await evaluator.assess("Prove the correctness of a lock-free queue and analyse its complexity.")
    assert hard.complexity == TaskComplexity.COMPLEX and hard.evaluator == "embedding"


async def test_llm_evaluator_caches_and_falls_back():
    grader = FunctionConnector("grader", lambda r: 'Sure: {"complexity": "complex", "score": 0.9}')
    evaluator = LLMComplexityEvaluator(grader)
    assessment = await evaluator.assess("Prove P != NP")
    assert (assessment.complexity, assessment.score, assessment.evaluator) == (
        TaskComplexity.COMPLEX,
        0.9,
        "llm",
    )
    await evaluator.assess("Prove P != NP")
    assert grader.calls == 1  # cached
    broken = LLMComplexityEvaluator(FunctionConnector("g", lambda r: "I cannot say"))
    fallback = await broken.assess("List three fruits.")
    assert fallback.complexity == TaskComplexity.SIMPLE and fallback.evaluator == "llm->fallback:heuristic"
    down = LLMComplexityEvaluator(FunctionConnector("g", fail_always=True))
    assert (await down.assess("List three fruits.")).evaluator.startswith("llm->fallback")


def test_evaluators_from_config(tracking, tmp_path):
    pl.DataFrame({"prompt": ["hi", "prove it deeply"], "complexity": ["simple", "complex"]}).write_csv(
        tmp_path / "labels.csv"
    )
    config = scripted_config("a", "grader")
    config["routing"]["evaluators"] = {
        "support": {"type": "embedding", "examples": str(tmp_path / "labels.csv"), "k": 1},
        "review": {"type": "llm", "provider": "grader"},
    }
    orch = Orchestra(config, tracking=tracking)
    orch.model_registry.register_connector("grader", FunctionConnector("grader"))
    assert isinstance(orch.task_router.evaluator_for("support"), EmbeddingComplexityEvaluator)
    assert isinstance(orch.task_router.evaluator_for("review"), LLMComplexityEvaluator)
    config["routing"]["evaluators"] = {"x": {"type": "crystal-ball"}}
    with pytest.raises(ConfigError, match=r"routing\.evaluators\.x\.type is 'crystal-ball'"):
        Orchestra(config, tracking=tracking)
    orch.close()


async def test_propensities_are_logged_in_the_table_and_the_trace(make_orchestra, tracking, client):
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, n=n: n) for n in ("x", "y", "z")},
        routing={"default_strategy": "random", "rules": [{"providers": ["x", "y", "z"]}]},
    )
    async with orch.run("random-routing") as scope:
        results = [await orch.process_request(f"q{i}", user_id="u1") for i in range(6)]
    await orch.flush()
    table = read_request_table(tracking, scope.run_id)
    for row in table.iter_rows(named=True):
        assert json.loads(row["propensities_json"]) == pytest.approx({"x": 1 / 3, "y": 1 / 3, "z": 1 / 3})
        assert row["routing_strategy"] == "random"
    trace = client.get_trace(results[0]["metadata"]["trace_id"])
    route = next(span for span in trace.data.spans if span.name == "route")
    assert route.outputs["propensities"] == pytest.approx({"x": 1 / 3, "y": 1 / 3, "z": 1 / 3})


async def test_performance_routing_learns_online_and_from_the_store(tracking):
    def build(strategy: str) -> Orchestra:
        config = scripted_config("bad", "fine")
        config["routing"] = {
            "default_strategy": strategy,
            "rules": [{"providers": ["bad", "fine"]}],
            "performance": {"min_samples": 5, "exploration": "none", "load_history": True},
        }
        orch = Orchestra(config, tracking=tracking)
        orch.model_registry.register_connector("bad", FunctionConnector("bad", fail_always=True))
        orch.model_registry.register_connector("fine", FunctionConnector("fine", lambda r: "ok"))
        return orch

    first = build("performance_based")
    async with first.run("learning"):
        answers = [await first.process_request(f"q{i}", user_id="u1") for i in range(20)]
    assert all(a["response"] == "ok" for a in answers)
    assert answers[-1]["metadata"]["providers_called"] == ["fine"]  # learned to skip the failing one
    first.close()
    second = await build("performance_based").start()  # a new process reads the same store at start
    assert second.task_router.history.stats("general", "simple", "bad").n >= 5
    decision = await second.task_router.evaluate_and_route(
        "new question", "general", complexity_override="simple"
    )
    assert decision.chosen == ["fine"]
    second.close()
