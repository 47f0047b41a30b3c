"""The task router: complexity evaluation, then a routing strategy picks the providers.

router = TaskRouter(settings.routing, provider_names=lambda: ["gpt-4", "claude"])
decision = await router.evaluate_and_route("Prove that ...", "math")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestra.config.schema import RoutingRule, RoutingSettings
from orchestra.errors import ConfigError, InvalidRequest, NoRouteFound
from orchestra.routing.complexity import (
    ComplexityAssessment,
    ComplexityEvaluator,
    HeuristicComplexityEvaluator,
)
from orchestra.routing.decision import RoutingDecision
from orchestra.types import TaskComplexity

STRATEGIES = ("rules",)


class TaskRouter:
    """Routes a prompt of a task type to providers, by the configured strategy."""

    def __init__(
        self,
        settings: RoutingSettings,
        provider_names: Callable[[], list[str]],
        default_evaluator: ComplexityEvaluator | None = None,
    ) -> None:
        if settings.default_strategy not in STRATEGIES:
            raise ConfigError(
                f"routing.default_strategy is {settings.default_strategy!r}; "
                f"available: {', '.join(STRATEGIES)}"
            )
        self.settings = settings
        self.rules: list[RoutingRule] = list(settings.rules)
        self._provider_names = provider_names
        self._default_evaluator = default_evaluator or HeuristicComplexityEvaluator(
            complex_from=settings.complexity_threshold
        )
        self._evaluators: dict[str, ComplexityEvaluator] = {}

    def register_evaluator(self, task_type: str, evaluator: ComplexityEvaluator) -> None:
        """Use `evaluator` for prompts of `task_type`."""
        self._evaluators[task_type] = evaluator

    def add_routing_rule(self, rule: RoutingRule | Mapping[str, Any]) -> None:
        """Append a rule (rules are matched in order; the first match wins)."""
        self.rules.append(rule if isinstance(rule, RoutingRule) else RoutingRule.model_validate(rule))

    def evaluator_for(self, task_type: str) -> ComplexityEvaluator:
        return self._evaluators.get(task_type, self._default_evaluator)

    async def assess(
        self, prompt: str, task_type: str, override: TaskComplexity | str | None = None
    ) -> ComplexityAssessment:
        if override is not None:
            complexity = TaskComplexity(override)
            score = {"simple": 0.0, "medium": 0.5, "complex": 1.0}[complexity.value]
            return ComplexityAssessment(complexity, score, "override")
        return await self.evaluator_for(task_type).assess(prompt)

    async def evaluate_and_route(
        self,
        prompt: str,
        task_type: str,
        *,
        complexity_override: TaskComplexity | str | None = None,
        require_consensus: bool | None = None,
        min_providers: int = 1,
    ) -> RoutingDecision:
        """Assess complexity, match the first rule, then apply the call's overrides."""
        assessment = await self.assess(prompt, task_type, complexity_override)
        configured = self._provider_names()
        rule_index, rule = self._match(task_type, assessment.complexity)
        if rule is None:
            if self.rules:
                raise NoRouteFound(
                    f"no routing rule matches task_type={task_type!r}, "
                    f"complexity={assessment.complexity.value!r}; add a rule with "
                    f"task_type 'any' as a default (rules cover task types: "
                    f"{sorted({r.task_type for r in self.rules})})"
                )
            listed, consensus, reason = configured, False, "no routing rules configured: configured order"
        else:
            listed = list(rule.providers)
            consensus = rule.require_consensus
            reason = f"rule {rule_index} (task_type={rule.task_type}, complexity={_text(rule.complexity)})"
            min_providers = max(min_providers, rule.min_providers or 1)
        if (
            require_consensus is None
            and self.settings.require_consensus_for_complex
            and assessment.complexity == TaskComplexity.COMPLEX
            and not consensus
            and len(listed) > 1
        ):
            consensus = True
            reason += "; complex prompt -> consensus (routing.require_consensus_for_complex)"
        if require_consensus is not None and require_consensus != consensus:
            consensus = require_consensus
            reason += f"; require_consensus={require_consensus} from the call"
        if min_providers > len(configured):
            raise InvalidRequest(
                f"min_providers={min_providers} but only {len(configured)} provider(s) are "
                f"configured ({', '.join(configured) or 'none'})"
            )
        pool = list(listed)
        if min_providers > len(pool):
            pool += [p for p in configured if p not in pool]
            reason += f"; min_providers={min_providers}: topped up from the configured providers"
        wanted = min(len(pool), max(min_providers, len(pool) if consensus else 1))
        if consensus and wanted < 2:
            reason += "; only one provider available, so no consensus"
        chosen, fallbacks = pool[:wanted], pool[wanted:]
        considered = pool + [p for p in configured if p not in pool]
        return RoutingDecision(
            task_type=task_type,
            complexity=assessment.complexity,
            complexity_score=assessment.score,
            strategy="rules",
            chosen=chosen,
            fallbacks=fallbacks,
            require_consensus=consensus,
            min_providers=min_providers,
            reason=reason,
            candidate_scores={p: (1.0 if p in pool else 0.0) for p in considered},
            propensities={p: (1.0 if p in chosen else 0.0) for p in considered},
            rule_index=rule_index,
            evaluator=assessment.evaluator,
        )

    def _match(self, task_type: str, complexity: TaskComplexity) -> tuple[int | None, RoutingRule | None]:
        for index, rule in enumerate(self.rules):
            if rule.matches(task_type, complexity):
                return index, rule
        return None, None


def _text(value: Any) -> str:
    return getattr(value, "value", value)
