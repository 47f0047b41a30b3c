"""The task router: complexity evaluation, the first matching rule, then a routing strategy.

The matched rule decides which providers are allowed and whether consensus is required; the
strategy (`routing.default_strategy`) ranks the allowed ones. The call's overrides
(`complexity_override`, `require_consensus`, `min_providers`) win over both.

    router = TaskRouter(settings.routing, provider_names=lambda: ["gpt-4", "claude"])
    decision = await router.evaluate_and_route("Prove that ...", "math")
    decision.chosen, decision.propensities
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchestra.config.schema import RoutingRule, RoutingSettings
from orchestra.entrypoints import discover
from orchestra.errors import ConfigError, InvalidRequest, NoRouteFound
from orchestra.routing.budget import SpendMonitor
from orchestra.routing.cascade import CascadePolicy
from orchestra.routing.complexity import (
    CLASS_SCORE,
    ComplexityAssessment,
    ComplexityEvaluator,
    HeuristicComplexityEvaluator,
)
from orchestra.routing.decision import RoutingDecision
from orchestra.routing.history import PerformanceHistory
from orchestra.routing.strategies import (
    CascadeStrategy,
    CostAwareStrategy,
    LearnedPolicy,
    LearnedStrategy,
    PerformanceStrategy,
    RandomStrategy,
    RouteContext,
    RoutingStrategy,
    RulesStrategy,
    Weights,
)
from orchestra.types import TaskComplexity

if TYPE_CHECKING:
    from orchestra.engine.records import RequestRecord  # routing reads the engine's record


ROUTERS_GROUP = "orchestra.routers"
"""The entry-point group of routing strategies from installed packages."""

MetricsLogger = Callable[[dict[str, float], int], None]
"""Logs router metrics (name -> value) at a step: the engine passes the tracker's, for the run."""

METRICS_EVERY = 100
"""Requests between two logs of the router's spend and exploration-share metrics."""


class TaskRouter:
    """Routes a prompt of a task type to providers, by the configured strategy."""

    def __init__(
        self,
        settings: RoutingSettings,
        provider_names: Callable[[], list[str]],
        *,
        seed: int = 0,
        history: PerformanceHistory | None = None,
    ) -> None:
        self.settings = settings
        self.rules: list[RoutingRule] = list(settings.rules)
        self.seed = seed
        self._provider_names = provider_names
        self._default_evaluator = HeuristicComplexityEvaluator(complex_from=settings.complexity_threshold)
        self._evaluators: dict[str, ComplexityEvaluator] = {}
        performance = settings.performance
        self.history = history or PerformanceHistory(
            half_life_hours=performance.half_life_hours, window_hours=performance.window_hours
        )
        self.strategies: dict[str, RoutingStrategy] = {
            "rules": RulesStrategy(),
            "random": RandomStrategy(),
            "performance_based": PerformanceStrategy(
                self.history,
                weights=Weights(**performance.weights.model_dump()),
                exploration=performance.exploration,
                epsilon=performance.epsilon,
                min_samples=performance.min_samples,
                epsilon_decay=performance.epsilon_decay,
            ),
            "cost_aware": CostAwareStrategy(
                self.history,
                target_quality=settings.cost_aware.target_quality,
                min_samples=settings.cost_aware.min_samples,
            ),
            "learned": LearnedStrategy(),
            "cascade": CascadeStrategy(),
        }
        plugins, self.plugin_errors = discover(ROUTERS_GROUP, RoutingStrategy)
        self.strategies.update(plugins)
        if settings.default_strategy not in self.strategies:
            raise ConfigError(
                f"routing.default_strategy is {settings.default_strategy!r}; "
                f"available: {', '.join(sorted(self.strategies))}"
            )
        self._occurrences: dict[str, int] = {}
        self.decisions = 0
        self.exploring_decisions = 0
        self.observed = 0
        self.spend_monitor: SpendMonitor | None = None
        budget = self._budget(settings)
        if budget is not None:
            self.set_spend_target(budget)

    @staticmethod
    def _budget(settings: RoutingSettings) -> float | None:
        if settings.default_strategy == "learned":
            return settings.learned.budget_per_1k
        if settings.default_strategy == "cascade":
            return settings.cascade.budget_per_1k
        return None

    def set_spend_target(self, budget_per_1k: float | None) -> None:
        """Track the realised spend per 1,000 requests against `budget_per_1k` (None: stop)."""
        self.spend_monitor = (
            None
            if budget_per_1k is None
            else SpendMonitor(budget_per_1k, tolerance=self.settings.budget_tolerance)
        )

    @property
    def exploration_share(self) -> float:
        """The share of decisions so far that were made to explore."""
        return self.exploring_decisions / self.decisions if self.decisions else 0.0

    @property
    def strategy(self) -> RoutingStrategy:
        return self.strategies[self.settings.default_strategy]

    def register_evaluator(self, task_type: str, evaluator: ComplexityEvaluator) -> None:
        """Use `evaluator` for prompts of `task_type`."""
        self._evaluators[task_type] = evaluator

    def register_strategy(self, name: str, strategy: RoutingStrategy) -> None:
        self.strategies[name] = strategy

    def set_learned_policy(self, policy: LearnedPolicy) -> None:
        """The policy the `learned` strategy asks (fitted on logged data)."""
        learned = self.strategies["learned"]
        assert isinstance(learned, LearnedStrategy)
        learned.policy = policy

    def set_cascade_policy(self, policy: CascadePolicy) -> None:
        """The cascade the `cascade` strategy follows (its stages; the engine judges the answers)."""
        cascade = self.strategies["cascade"]
        assert isinstance(cascade, CascadeStrategy)
        cascade.policy = policy

    @property
    def cascade_policy(self) -> CascadePolicy | None:
        cascade = self.strategies.get("cascade")
        return cascade.policy if isinstance(cascade, CascadeStrategy) else None

    def add_routing_rule(self, rule: RoutingRule | Mapping[str, Any]) -> None:
        """Append a rule (rules are matched in order; the first match wins)."""
        self.rules.append(rule if isinstance(rule, RoutingRule) else RoutingRule.model_validate(rule))

    def observe(self, record: RequestRecord, log_metrics: MetricsLogger | None = None) -> None:
        """Learn from a finished request (performance-based and cost-aware routing use it), and
        follow the spend against a budget. `log_metrics` receives the exploration share (and
        the spend, with a budget) every `METRICS_EVERY` routed requests, and the spend whenever
        it leaves or re-enters its tolerance around the budget."""
        self.history.observe(record)
        if record.routing is None:
            return
        self.observed += 1
        monitor = self.spend_monitor
        drift = monitor.observe(record.cost_usd) if monitor is not None else None
        if log_metrics is None or (drift is None and self.observed % METRICS_EVERY):
            return
        metrics = {"routing.exploration_share": self.exploration_share}
        if monitor is not None:
            metrics["routing.spend_per_1k"] = monitor.realised_per_1k
            metrics["routing.spend_drift"] = monitor.realised_per_1k / monitor.target_per_1k - 1.0
        if drift is not None:
            metrics["routing.spend_drift_warning"] = float(drift.drifting)
        log_metrics(metrics, self.observed)

    def evaluator_for(self, task_type: str) -> ComplexityEvaluator:
        return self._evaluators.get(task_type, self._default_evaluator)

    async def assess(
        self, prompt: str, task_type: str, override: TaskComplexity | str | None = None
    ) -> ComplexityAssessment:
        if override is not None:
            complexity = TaskComplexity(override)
            return ComplexityAssessment(complexity, CLASS_SCORE[complexity], "override")
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
        """Assess complexity, match the first rule, apply the call's overrides, rank by strategy."""
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
            listed, consensus, reason = configured, False, "no routing rules: every configured provider"
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
        context = RouteContext(
            prompt, task_type, assessment.complexity, pool, wanted, self._seed(prompt, task_type)
        )
        choice = self.strategy.choose(context)
        reason += f"; {self.settings.default_strategy}: {choice.reason}"
        outside = [p for p in configured if p not in pool]
        self.decisions += 1
        self.exploring_decisions += choice.exploring
        details = {}
        if self.spend_monitor is not None:
            details["spend"] = {
                "budget_per_1k": self.spend_monitor.target_per_1k,
                "realised_per_1k": self.spend_monitor.realised_per_1k
                if self.spend_monitor.requests
                else None,
                "drifting": self.spend_monitor.drifting,
            }
        return RoutingDecision(
            task_type=task_type,
            complexity=assessment.complexity,
            complexity_score=assessment.score,
            strategy=self.settings.default_strategy,
            chosen=choice.ranked[:wanted],
            fallbacks=choice.ranked[wanted:],
            require_consensus=consensus,
            min_providers=min_providers,
            reason=reason,
            candidate_scores={**choice.scores, **dict.fromkeys(outside, 0.0)},
            propensities={**choice.propensities, **dict.fromkeys(outside, 0.0)},
            rule_index=rule_index,
            evaluator=assessment.evaluator,
            exploring=choice.exploring,
            details=details,
        )

    def _seed(self, prompt: str, task_type: str) -> tuple[int, int, int]:
        """The seed of the decision's generator: (seed, prompt, how often this prompt was
        routed), reproducible for a fixed seed however concurrent requests interleave."""
        digest = hashlib.sha256(f"{task_type}\x1f{prompt}".encode()).digest()
        key = digest.hex()
        occurrence = self._occurrences.get(key, 0)
        self._occurrences[key] = occurrence + 1
        return (self.seed, int.from_bytes(digest[:8], "big"), occurrence)

    def _match(self, task_type: str, complexity: TaskComplexity) -> tuple[int | None, RoutingRule | None]:
        for index, rule in enumerate(self.rules):
            if rule.matches(task_type, complexity):
                return index, rule
        return None, None


def _text(value: Any) -> str:
    return getattr(value, "value", value)
