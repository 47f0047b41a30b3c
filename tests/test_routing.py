"""Rule-based routing: first match wins, overrides from the call, complexity evaluation."""

from __future__ import annotations

import pytest

from orchestra import HeuristicComplexityEvaluator, InvalidRequest, NoRouteFound, TaskComplexity, TaskRouter
from orchestra.config.schema import RoutingSettings
from orchestra.routing.complexity import ComplexityEvaluator

PROVIDERS = ["openai", "anthropic", "google"]


def router(rules, **settings) -> TaskRouter:
    return TaskRouter(RoutingSettings(rules=rules, **settings), provider_names=lambda: list(PROVIDERS))


SEED_RULES = [
    {"task_type": "code_generation", "complexity": "simple", "providers": ["openai", "anthropic"]},
    {
        "task_type": "code_generation",
        "complexity": "complex",
        "providers": PROVIDERS,
        "require_consensus": True,
    },
    {
        "task_type": "code_review",
        "complexity": "any",
        "providers": ["openai", "anthropic"],
        "require_consensus": True,
    },
]


async def test_seed_rules_route_as_documented():
    r = router(SEED_RULES)
    simple = await r.evaluate_and_route("x", "code_generation", complexity_override="simple")
    assert (simple.chosen, simple.fallbacks, simple.require_consensus) == (["openai"], ["anthropic"], False)
    assert simple.propensities == {"openai": 1.0, "anthropic": 0.0, "google": 0.0}
    complex_ = await r.evaluate_and_route("x", "code_generation", complexity_override=TaskComplexity.COMPLEX)
    assert (complex_.chosen, complex_.require_consensus, complex_.rule_index) == (PROVIDERS, True, 1)
    review = await r.evaluate_and_route("x", "code_review", complexity_override="medium")
    assert review.chosen == ["openai", "anthropic"] and review.require_consensus
    with pytest.raises(NoRouteFound, match="task_type='code_generation', complexity='medium'"):
        await r.evaluate_and_route("x", "code_generation", complexity_override="medium")


async def test_call_overrides_win_over_the_rule():
    r = router(SEED_RULES)
    single = await r.evaluate_and_route(
        "x", "code_review", complexity_override="simple", require_consensus=False
    )
    assert single.chosen == ["openai"] and not single.require_consensus
    assert "require_consensus=False from the call" in single.reason
    topped = await r.evaluate_and_route("x", "code_review", complexity_override="simple", min_providers=3)
    assert topped.chosen == PROVIDERS and topped.min_providers == 3
    with pytest.raises(InvalidRequest, match="min_providers=4 but only 3"):
        await r.evaluate_and_route("x", "code_review", min_providers=4)


async def test_complex_prompts_escalate_to_consensus_when_configured():
    r = router([{"providers": PROVIDERS}], require_consensus_for_complex=True)
    decision = await r.evaluate_and_route("x", "any-task", complexity_override="complex")
    assert decision.require_consensus and decision.chosen == PROVIDERS
    assert "require_consensus_for_complex" in decision.reason
    plain = await r.evaluate_and_route("x", "any-task", complexity_override="simple")
    assert not plain.require_consensus and plain.chosen == ["openai"]


async def test_no_rules_uses_configured_order():
    decision = await router([]).evaluate_and_route("hello", "anything")
    assert decision.chosen == ["openai"] and decision.fallbacks == ["anthropic", "google"]


async def test_registered_evaluator_is_used_for_its_task_type():
    class AlwaysComplex(ComplexityEvaluator):
        name = "always-complex"

        async def evaluate(self, prompt: str) -> TaskComplexity:
            return TaskComplexity.COMPLEX

    r = router(SEED_RULES)
    r.register_evaluator("code_generation", AlwaysComplex())
    decision = await r.evaluate_and_route("print hi", "code_generation")
    assert decision.complexity == TaskComplexity.COMPLEX and decision.evaluator == "always-complex"
    assert decision.complexity_score == 1.0


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("List three fruits.", TaskComplexity.SIMPLE),
        ("What is the capital of Peru?", TaskComplexity.SIMPLE),
        (
            "Design a comprehensive, step-by-step migration strategy for a monolith to microservices. "
            "Analyze the trade-offs of each phase, compare alternatives, and explain why you would "
            "order them this way.\n```\nservice A -> B\n```\n" + "Consider data consistency. " * 20,
            TaskComplexity.COMPLEX,
        ),
    ],
)
async def test_heuristic_evaluator(prompt, expected):
    evaluator = HeuristicComplexityEvaluator()
    assert await evaluator.evaluate(prompt) == expected
    assert 0.0 <= await evaluator.score(prompt) <= 1.0


def test_heuristic_thresholds_are_checked():
    with pytest.raises(ValueError):
        HeuristicComplexityEvaluator(simple_below=0.8, complex_from=0.2)
