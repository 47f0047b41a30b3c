"""Routing: complexity evaluation and the task router."""

from orchestra.routing.complexity import (
    ComplexityAssessment,
    ComplexityEvaluator,
    HeuristicComplexityEvaluator,
)
from orchestra.routing.decision import RoutingDecision
from orchestra.routing.router import TaskRouter

__all__ = [
    "ComplexityAssessment",
    "ComplexityEvaluator",
    "HeuristicComplexityEvaluator",
    "RoutingDecision",
    "TaskRouter",
]
