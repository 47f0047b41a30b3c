"""Routing: complexity evaluation, the task router, learned routers, budgets and cascades."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
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
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.routing.budget": ["SpendMonitor", "Target"],
            "orchestra.routing.calibration": ["ProbabilityCalibrator", "reliability"],
            "orchestra.routing.cascade": ["CascadePolicy", "fit_cascade"],
            "orchestra.routing.complexity": [
                "ComplexityAssessment",
                "ComplexityEvaluator",
                "HeuristicComplexityEvaluator",
            ],
            "orchestra.routing.decision": ["RoutingDecision"],
            "orchestra.routing.learned": ["KNNRoutingPolicy"],
            "orchestra.routing.router": ["TaskRouter"],
        },
    )

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
