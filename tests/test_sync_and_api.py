"""The public API surface, the synchronous twin, and the exception tree."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import orchestra
from orchestra import FunctionConnector, run_sync
from orchestra import errors as errors_module

PUBLIC_API = {
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
    "RequestMetadata",
    "RequestOptions",
    "RequestResult",
    "ReplayConnector",
    "ReplayDataset",
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
}


def test_public_api_is_locked():
    assert set(orchestra.__all__) == PUBLIC_API
    for name in PUBLIC_API:
        assert hasattr(orchestra, name), name
    assert orchestra.AIOrchestrationFramework is orchestra.Orchestra


def test_importing_orchestra_imports_no_heavy_library():
    code = (
        "import sys, orchestra; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'mlflow', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == ""


def test_every_error_is_an_orchestra_error():
    classes = [
        value
        for value in vars(errors_module).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(classes) >= 12
    assert all(issubclass(c, orchestra.OrchestraError) for c in classes)
    assert orchestra.DatabaseConnectionError is orchestra.TrackingStoreError
    assert issubclass(orchestra.ConsensusTimeout, orchestra.ConsensusError)
    assert orchestra.ProviderTimeout.retryable and not orchestra.PromptNotRecorded.retryable


def test_sync_twin_outside_an_event_loop(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a", lambda r: "sync ok")})
    assert orch.process_request_sync("hi", user_id="u1")["response"] == "sync ok"
    assert orch.process_request_sync("again", user_id="u1")["response"] == "sync ok"  # same private loop


def test_sync_twin_inside_a_running_loop_like_jupyter(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a", lambda r: "nested ok")})

    async def notebook_cell():
        # Jupyter runs cells inside its own loop; sync code called there must still work.
        return orch.process_request_sync("hi", user_id="u1")

    assert asyncio.run(notebook_cell())["response"] == "nested ok"


def test_run_sync_returns_values_and_raises_errors():
    async def value():
        return 41 + 1

    async def boom():
        raise orchestra.InvalidRequest("nope")

    assert run_sync(value()) == 42
    with pytest.raises(orchestra.InvalidRequest):
        run_sync(boom())


async def test_add_model_provider_and_registry(make_orchestra):
    orch = make_orchestra({"a": FunctionConnector("a")})
    await orch.add_model_provider(
        orchestra.ModelProvider.CUSTOM, FunctionConnector(respond=lambda r: "custom")
    )
    assert "custom" in orch.model_registry.names()
    assert orch.model_registry.get("custom").name == "custom"
    with pytest.raises(orchestra.ModelProviderNotFound, match="configured providers: a, custom"):
        orch.model_registry.get("missing")
    with pytest.raises(TypeError):
        orch.model_registry.register_connector("bad", object())
