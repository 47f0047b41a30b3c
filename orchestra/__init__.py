"""orchestra: multi-model LLM orchestration for research, logged to MLflow.

from orchestra import Orchestra
orch = Orchestra.from_config("config.yaml")
result = orch.process_request_sync("Name three primes.", task_type="general", user_id="u1")
result.response, result.metadata.cost_usd
"""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.compat import AIOrchestrationFramework, DatabaseConnectionError
    from orchestra.config import Settings, load_settings
    from orchestra.consensus import (
        ConsensusManager,
        ConsensusOutcome,
        ConsensusStrategy,
        LexicalConsensus,
        TaskContext,
    )
    from orchestra.engine.hooks import Hooks
    from orchestra.engine.options import RequestOptions
    from orchestra.engine.orchestrator import Orchestra, RunScope
    from orchestra.engine.result import RequestMetadata, RequestResult
    from orchestra.engine.streaming import StreamingResponse
    from orchestra.errors import (
        AuthenticationFailed,
        BadProviderRequest,
        BudgetExceeded,
        CallFailure,
        ConfigError,
        ConsensusError,
        ConsensusNotReached,
        ConsensusTimeout,
        InsufficientResponses,
        InvalidRequest,
        MalformedResponse,
        ModelProviderNotFound,
        NoRouteFound,
        OrchestraError,
        PromptNotRecorded,
        ProviderCoolingDown,
        ProviderError,
        ProviderTimeout,
        ProviderUnavailable,
        RateLimited,
        StreamAbandoned,
        StreamClosed,
        TrackingStoreError,
    )
    from orchestra.metrics import MetricsCollector, PrometheusCollector
    from orchestra.profiling import PerformanceProfiler
    from orchestra.providers import (
        BaseModelConnector,
        FunctionConnector,
        LatencyProfile,
        ModelRegistry,
        Price,
        PriceTable,
        ReplayConnector,
        ReplayDataset,
    )
    from orchestra.routing import (
        ComplexityEvaluator,
        HeuristicComplexityEvaluator,
        RoutingDecision,
        TaskRouter,
    )
    from orchestra.sync import run_sync
    from orchestra.tracking import TrackingSettings, load_tracking_settings
    from orchestra.types import ModelProvider, ModelRequest, ModelResponse, TaskComplexity
else:  # each name is imported from its module on first use (PEP 562): `import orchestra` stays cheap
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.compat": ["AIOrchestrationFramework", "DatabaseConnectionError"],
            "orchestra.config": ["Settings", "load_settings"],
            "orchestra.consensus": [
                "ConsensusManager",
                "ConsensusOutcome",
                "ConsensusStrategy",
                "LexicalConsensus",
                "TaskContext",
            ],
            "orchestra.engine.hooks": ["Hooks"],
            "orchestra.engine.options": ["RequestOptions"],
            "orchestra.engine.orchestrator": ["Orchestra", "RunScope"],
            "orchestra.engine.result": ["RequestMetadata", "RequestResult"],
            "orchestra.engine.streaming": ["StreamingResponse"],
            "orchestra.errors": [
                "AuthenticationFailed",
                "BadProviderRequest",
                "BudgetExceeded",
                "CallFailure",
                "ConfigError",
                "ConsensusError",
                "ConsensusNotReached",
                "ConsensusTimeout",
                "InsufficientResponses",
                "InvalidRequest",
                "MalformedResponse",
                "ModelProviderNotFound",
                "NoRouteFound",
                "OrchestraError",
                "PromptNotRecorded",
                "ProviderCoolingDown",
                "ProviderError",
                "ProviderTimeout",
                "ProviderUnavailable",
                "RateLimited",
                "StreamAbandoned",
                "StreamClosed",
                "TrackingStoreError",
            ],
            "orchestra.metrics": ["MetricsCollector", "PrometheusCollector"],
            "orchestra.profiling": ["PerformanceProfiler"],
            "orchestra.providers": [
                "BaseModelConnector",
                "FunctionConnector",
                "LatencyProfile",
                "ModelRegistry",
                "Price",
                "PriceTable",
                "ReplayConnector",
                "ReplayDataset",
            ],
            "orchestra.routing": [
                "ComplexityEvaluator",
                "HeuristicComplexityEvaluator",
                "RoutingDecision",
                "TaskRouter",
            ],
            "orchestra.sync": ["run_sync"],
            "orchestra.tracking": ["TrackingSettings", "load_tracking_settings"],
            "orchestra.types": ["ModelProvider", "ModelRequest", "ModelResponse", "TaskComplexity"],
        },
    )

__version__ = "0.1.0"

__all__ = [
    "AIOrchestrationFramework",
    "AuthenticationFailed",
    "BadProviderRequest",
    "BaseModelConnector",
    "BudgetExceeded",
    "CallFailure",
    "ComplexityEvaluator",
    "ConfigError",
    "ConsensusError",
    "ConsensusManager",
    "ConsensusNotReached",
    "ConsensusOutcome",
    "ConsensusStrategy",
    "ConsensusTimeout",
    "DatabaseConnectionError",
    "FunctionConnector",
    "HeuristicComplexityEvaluator",
    "Hooks",
    "InsufficientResponses",
    "InvalidRequest",
    "LatencyProfile",
    "LexicalConsensus",
    "MalformedResponse",
    "MetricsCollector",
    "ModelProvider",
    "ModelProviderNotFound",
    "ModelRegistry",
    "ModelRequest",
    "ModelResponse",
    "NoRouteFound",
    "Orchestra",
    "OrchestraError",
    "PerformanceProfiler",
    "Price",
    "PriceTable",
    "PrometheusCollector",
    "PromptNotRecorded",
    "ProviderCoolingDown",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "ReplayConnector",
    "ReplayDataset",
    "RequestMetadata",
    "RequestOptions",
    "RequestResult",
    "RoutingDecision",
    "RunScope",
    "Settings",
    "StreamAbandoned",
    "StreamClosed",
    "StreamingResponse",
    "TaskComplexity",
    "TaskContext",
    "TaskRouter",
    "TrackingSettings",
    "TrackingStoreError",
    "__version__",
    "load_settings",
    "load_tracking_settings",
    "run_sync",
]
