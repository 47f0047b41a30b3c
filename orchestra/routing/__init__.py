"""Routing: complexity evaluation, the task router, learned routers, budgets and cascades."""

from orchestra.routing.budget import SpendMonitor, Target
from orchestra.routing.calibration import ProbabilityCalibrator, reliability
from orchestra.routing.cascade import CascadePolicy, fit_cascade
from orchestra.routing.complexity import (
    ComplexityAssessment,
    ComplexityEvaluator,
    HeuristicComplexityEvaluator,
)
from orchestra.routing.decision import RoutingDecision
from orchestra.routing.learned import KNNRoutingPolicy
from orchestra.routing.router import TaskRouter

__all__ = [
    "CascadePolicy",
    "ComplexityAssessment",
    "ComplexityEvaluator",
    "HeuristicComplexityEvaluator",
    "KNNRoutingPolicy",
    "ProbabilityCalibrator",
    "RoutingDecision",
    "SpendMonitor",
    "Target",
    "TaskRouter",
    "fit_cascade",
    "reliability",
]
