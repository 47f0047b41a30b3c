"""`Orchestra`: route -> call providers in parallel -> consensus -> record, for every request.

orch = Orchestra.from_config("config.yaml")
result = await orch.process_request("Name three primes.", task_type="general", user_id="u1")
result["response"], result["metadata"]["providers_used"]
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.answering import choose_answer
from orchestra.cache.base import ResponseCache
from orchestra.cascading import cascade_answers
from orchestra.config.loader import load_settings
from orchestra.config.schema import Settings
from orchestra.consensus.manager import ConsensusManager
from orchestra.errors import (
    ConfigError,
    InvalidRequest,
    OrchestraError,
    StreamAbandoned,
    StreamClosed,
)
from orchestra.hooks import Hooks
from orchestra.logs import configure_logging, get_logger
from orchestra.metadata import request_metadata
from orchestra.metrics import MetricsCollector
from orchestra.observability import Observability, configured_collectors, stage_timings
from orchestra.pipeline import Answers, add_answers, gather_answers, new_context, stream_answer
from orchestra.prompts.references import resolve_prompt_references, rule_system_prompt
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.pricing import Price, PriceTable
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import BuildContext, ModelRegistry, build_connector
from orchestra.redact import SECRETS, set_pattern_detection
from orchestra.resilience.budget import Budget
from orchestra.resilience.factory import build_guard
from orchestra.resilience.guard import CallContext, ProviderGuard
from orchestra.routing.decision import RoutingDecision
from orchestra.routing.factory import build_evaluators, load_cascade_policy, load_learned_policy
from orchestra.routing.history import PerformanceHistory
from orchestra.routing.router import TaskRouter
from orchestra.runs import CURRENT_RUN, RunScope
from orchestra.streaming import StreamingResponse, UnreadStreams, stream_error
from orchestra.sync import run_sync
from orchestra.tracking.outcome import FlushResult
from orchestra.tracking.params import settings_params
from orchestra.tracking.reader import load_requests
from orchestra.tracking.records import RequestRecord
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.tags import KIND_TAG
from orchestra.tracking.tracker import RunHandle, Tracker
from orchestra.types import ModelProvider, ModelRequest, TaskComplexity
from orchestra.validation import RequestArguments, record_fields, validate_request

if TYPE_CHECKING:
    from orchestra.experiments.experiment import Experiment

logger = get_logger("orchestra")


class Orchestra(Observability):
    """The framework: providers, router, consensus and tracking behind `process_request`."""

    def __init__(
        self,
        config: dict[str, Any] | Settings | str | Path | None = None,
        *,
        tracking: TrackingSettings | str | Path | None = None,
        tracker: Tracker | None = None,
        datasets: dict[str, ReplayDataset] | None = None,
        debug: bool = False,
        log_level: str | None = None,
        enable_profiling: bool = False,
    ) -> None:
        """`config` is a dict, `Settings` or YAML path; `tracking` a `TrackingSettings` or
        `mlflow.yaml` path (default: the one beside the config). Pass `tracker` (and
        `datasets`) to share one tracking writer (and loaded datasets) between instances."""
        self.settings = load_settings(config if config is not None else {})
        self.config_path = Path(config).resolve() if isinstance(config, str | Path) else None
        self.debug = debug
        self.enable_profiling = enable_profiling
        self.hooks = Hooks()
        self.metrics_collectors: list[MetricsCollector] = configured_collectors(
            self.settings.framework.metrics_collectors
        )
        configure_logging(log_level or ("DEBUG" if debug else None))
        if tracker is not None:
            self.tracking_settings = tracker.settings
        elif isinstance(tracking, TrackingSettings):
            self.tracking_settings = tracking
        else:
            self.tracking_settings = load_tracking_settings(tracking, search_from=self.settings.base_dir)
        resolve_prompt_references(self.settings, self.tracking_settings)
        set_pattern_detection(self.tracking_settings.redact_patterns)
        self.prices = _price_table(self.settings)
        self.model_registry = ModelRegistry()
        context = BuildContext(self.settings, self.prices, dict(datasets or {}))
        for name, provider in self.settings.models.items():
            if provider.type == ModelProvider.FUNCTION:
                continue  # scripted providers are registered in code
            if provider.api_key is not None:
                SECRETS.register(provider.api_key.get_secret_value())
            self.model_registry.register_connector(name, build_connector(name, provider, context))
        self.datasets = context.datasets
        self.task_router = TaskRouter(
            self.settings.routing, provider_names=self.model_registry.names, seed=self.settings.framework.seed
        )
        for task_type, evaluator in build_evaluators(
            self.settings.routing, self.model_registry.get, self.settings.resolve_path
        ).items():
            self.task_router.register_evaluator(task_type, evaluator)
        if self.settings.routing.learned.policy:
            self.task_router.set_learned_policy(load_learned_policy(self.settings))
        if self.settings.routing.cascade.policy:
            self.task_router.set_cascade_policy(load_cascade_policy(self.settings))
        self.consensus_manager = ConsensusManager(self.settings.consensus, self.settings.resolve_path)
        self.consensus_manager.check_configured()
        self.tracker = tracker or Tracker(self.tracking_settings)
        self._owns_tracker = tracker is None
        self._load_history()
        self._session_run: RunHandle | None = None
        self.last_record: RequestRecord | None = None
        self.cache = _response_cache(self.settings)
        self._guards: dict[str, ProviderGuard] = {}
        self._unread_streams = UnreadStreams()
        self._run_budgets: dict[str, Budget] = {}
        self._request_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        reference = weakref.ref(self)
        atexit.register(lambda: (orch := reference()) is not None and orch.close())

    @classmethod
    def from_config(cls, path: str | Path, **options: Any) -> Orchestra:
        """An `Orchestra` from a `config.yaml` (and `mlflow.yaml` beside it, if present)."""
        return cls(Path(path), **options)

    # ---- providers ------------------------------------------------------------------------

    async def add_model_provider(self, provider: str | ModelProvider, connector: BaseModelConnector) -> None:
        """Register `connector` under the name `provider` (replacing one of that name)."""
        self.model_registry.register_connector(provider, connector)

    def _load_history(self) -> None:
        """Warm history-based routing with what earlier runs logged (routing.performance.load_history)."""
        routing = self.settings.routing
        if routing.default_strategy not in ("performance_based", "cost_aware"):
            return
        if not (routing.performance.load_history and self.tracking_settings.enabled):
            return
        window = routing.performance.window_hours
        since = None if window is None else datetime.now(UTC) - timedelta(hours=window)
        try:
            logged = load_requests(
                since=since, tracking=self.tracking_settings, columns=list(PerformanceHistory.COLUMNS)
            )
        except Exception as err:  # no history is a cold start, not a failure
            logger.warning("could not load routing history from the tracking store: %s", err)
            return
        if logged.height:
            self.task_router.history.merge(PerformanceHistory.from_frame(logged))

    def guard_for(self, name: str) -> ProviderGuard:
        """The resilience guard around provider `name` (rebuilt if its connector was replaced)."""
        connector = self.model_registry.get(name)
        guard = self._guards.get(name)
        if guard is None or guard.connector is not connector:
            guard = self._guards[name] = build_guard(name, connector, self.settings, self.cache)
        return guard

    def start_experiment(self, name: str, settings: Any = None, **options: Any) -> Experiment:
        """Start experiment `name` (the config's `experiments:` section, or `settings`) on this
        instance's traffic; send requests through `experiment.process_request` (see
        `orchestra.experiments`)."""
        from orchestra.experiments.experiment import start_experiment

        return start_experiment(self, name, settings, **options)

    # ---- runs -----------------------------------------------------------------------------

    def run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        parent: RunHandle | None = None,
    ) -> RunScope:
        """A scope (`with` or `async with`) in which every request is logged to one MLflow run
        (nested under `parent`, or under the enclosing scope's run)."""
        return RunScope(self, name, params, tags, parent)

    def current_run(self) -> RunHandle:
        """The run requests are logged to now: the innermost `run()` scope, else a session run."""
        run = CURRENT_RUN.get()
        if run is not None:
            return run
        if self._session_run is None or self._session_run.ended:
            self._session_run = self.tracker.begin_run(
                f"session-{time.strftime('%Y%m%d-%H%M%S')}",
                params=settings_params(self.settings),
                tags={KIND_TAG: "session"},
            )
        return self._session_run

    # ---- requests -------------------------------------------------------------------------

    async def process_request(
        self,
        prompt: str,
        task_type: str | None = None,
        user_id: str = "anonymous",
        require_consensus: bool | None = None,
        min_providers: int = 1,
        complexity_override: TaskComplexity | str | None = None,
        *,
        session_id: str | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tags: dict[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> dict[str, Any] | StreamingResponse:
        """Route, call, pick, log; returns {"response": str, "metadata": {...}}.

        `timeout` bounds the whole request (default `performance.request_timeout`).
        `stream=True` (single-provider routes) returns a `StreamingResponse` of text deltas.
        At most `performance.max_concurrent_requests` run at once; more wait for a slot (a
        streamed request holds its slot until the stream starts).
        Raises an `OrchestraError` (after logging the failed request) when no answer is possible.
        """
        async with self._request_slot():
            started = time.perf_counter()
            run = self.current_run()
            if run.run_id is None:
                await self.tracker.wait_created(run)  # at once when already created (or spooled)
            task_type = task_type or self.settings.framework.default_task_type
            arguments = RequestArguments(
                prompt, user_id, task_type, session_id, system_prompt, tags, min_providers,
                complexity_override, require_consensus, temperature, max_tokens, timeout,
            )  # fmt: skip
            record = RequestRecord(
                request_id=uuid.uuid4().hex,
                run_key=run.run_key,
                start_ns=time.time_ns(),
                end_ns=0,
                **record_fields(arguments),
            )
            decision: RoutingDecision | None = None
            try:
                validate_request(arguments, record.request_id)
                if self.hooks.wants("before_route"):
                    await self.hooks.emit(
                        "before_route",
                        request_id=record.request_id,
                        prompt=prompt,
                        task_type=task_type,
                        user_id=record.user_id,
                    )
                record.route_start_ns = time.time_ns()
                decision = await self.task_router.evaluate_and_route(
                    prompt,
                    task_type,
                    complexity_override=complexity_override,
                    require_consensus=require_consensus,
                    min_providers=min_providers,
                )
                record.route_end_ns = time.time_ns()
                record.routing = decision.as_dict()
                system_prompt = rule_system_prompt(self.task_router.rules, decision, record, system_prompt)
                if self.hooks.wants("after_route"):
                    await self.hooks.emit("after_route", request_id=record.request_id, decision=decision)
                options = {
                    "system_prompt": system_prompt,
                    "temperature": temperature,
                    "max_tokens": max_tokens,
                }
                deadline = asyncio.get_running_loop().time() + (
                    timeout if timeout is not None else self.settings.performance.request_timeout
                )
                run_budget = self._run_budget(run)

                def request_for(name: str) -> ModelRequest:
                    return self._request_for(name, prompt, options)

                def context_for(name: str) -> CallContext:
                    return new_context(self._timeout_for(name), deadline, run_budget, self.hooks)

                if stream:
                    if len(decision.chosen) > 1:
                        raise InvalidRequest(
                            f"stream=True needs a single-provider route; this one calls {decision.chosen} "
                            "(consensus or min_providers > 1)",
                            request_id=record.request_id,
                        )
                    return self._streaming(record, run, started, decision, request_for, context_for)
                await self._answer(record, decision, request_for, context_for)
            except OrchestraError as err:
                err.request_id = err.request_id or record.request_id
                await self._finish(record, run, started, error=err)
                raise
            except Exception as err:
                await self._finish(record, run, started, error=err)
                raise
            await self._finish(record, run, started)
            return {"response": record.response, "metadata": self._metadata(record, decision, run)}

    async def _answer(
        self,
        record: RequestRecord,
        decision: RoutingDecision,
        request_for: Callable[[str], ModelRequest],
        context_for: Callable[[str], CallContext],
    ) -> None:
        """Call the routed providers (embedding answers for consensus as they arrive), then choose."""
        consensus = decision.wants_consensus
        on_answer = partial(self.consensus_manager.prepare, record.task_type) if consensus else None
        cascade = self.task_router.cascade_policy if decision.strategy == "cascade" else None
        if cascade is not None:
            answers = await cascade_answers(
                record, decision, cascade, self.guard_for, request_for, context_for
            )
        else:
            answers = await gather_answers(
                decision,
                self.guard_for,
                request_for,
                context_for,
                on_answer=on_answer,
                wave_timeout_s=self.settings.consensus.timeout_s if consensus else None,
            )
        add_answers(record, answers)

        async def ask_more(count: int) -> Answers | None:
            called = {call.provider for call in record.calls}
            candidates = decision.fallbacks + self.model_registry.names()
            extra = [p for p in dict.fromkeys(candidates) if p not in called][:count]
            if not extra:
                return None
            wave = replace(decision, chosen=extra, fallbacks=[])
            return await gather_answers(wave, self.guard_for, request_for, context_for, on_answer=on_answer)

        await choose_answer(
            record,
            decision,
            answers,
            consensus=self.consensus_manager,
            settings=self.settings.consensus,
            ask_more=ask_more,
            hooks=self.hooks,
        )

    def _streaming(
        self,
        record: RequestRecord,
        run: RunHandle,
        started: float,
        decision: RoutingDecision,
        request_for: Callable[[str], ModelRequest],
        context_for: Callable[[str], CallContext],
    ) -> StreamingResponse:
        finished: dict[str, Any] = {}

        async def deltas() -> AsyncGenerator[str, None]:
            error: BaseException | None = None
            try:
                async for delta in stream_answer(record, decision, self.guard_for, request_for, context_for):
                    yield delta
            except GeneratorExit:
                error = StreamClosed("the consumer closed the stream early", request_id=record.request_id)
                raise
            except Exception as err:
                error = stream_error(err, record)
                raise error from (None if error is err else err)
            except BaseException as err:
                error = err
                raise
            finally:
                await self._finish(record, run, started, error=error)
                finished.update(self._metadata(record, decision, run))

        async def abandon() -> None:
            error = StreamAbandoned("the stream was never read", request_id=record.request_id)
            await self._finish(record, run, started, error=error)

        unread = self._unread_streams.add(record.request_id, abandon)
        return StreamingResponse(
            deltas(), lambda: finished or None, unread=unread, streams=self._unread_streams
        )

    def _request_slot(self) -> asyncio.Semaphore:
        """This event loop's gate of `performance.max_concurrent_requests`."""
        loop = asyncio.get_running_loop()
        gate = self._request_gates.get(loop)
        if gate is None:
            gate = self._request_gates[loop] = asyncio.Semaphore(
                self.settings.performance.max_concurrent_requests
            )
        return gate

    def process_request_sync(self, prompt: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """`process_request` for scripts and notebooks (works inside Jupyter's running loop)."""
        return run_sync(self.process_request(prompt, *args, **kwargs))

    def _request_for(self, name: str, prompt: str, options: dict[str, Any]) -> ModelRequest:
        provider = self.settings.models.get(name)
        defaults = (
            {}
            if provider is None
            else {"temperature": provider.temperature, "max_tokens": provider.max_tokens}
        )
        values = {**defaults, **{k: v for k, v in options.items() if v is not None}}
        return ModelRequest(prompt=prompt, **values)  # models.<name>.params live in the connector

    def _timeout_for(self, name: str) -> float:
        performance = self.settings.performance
        provider = self.settings.models.get(name)
        per_model = performance.models.get(name)
        for value in (provider.timeout if provider else None, per_model.timeout if per_model else None):
            if value is not None:
                return value
        return performance.request_timeout

    def _run_budget(self, run: RunHandle) -> Budget | None:
        limit = self.settings.performance.run_budget_usd
        if limit is None:
            return None
        if run.run_key not in self._run_budgets:
            self._run_budgets[run.run_key] = Budget(limit, f"run {run.name!r}")
        return self._run_budgets[run.run_key]

    async def _finish(
        self, record: RequestRecord, run: RunHandle, started: float, error: BaseException | None = None
    ) -> None:
        record.end_ns = time.time_ns()
        record.processing_time_ms = (time.perf_counter() - started) * 1000.0
        if record.calls:
            self.task_router.observe(record, partial(self.tracker.log_metrics, run))
        if error is not None:
            record.status = "abandoned" if isinstance(error, StreamAbandoned) else "error"
            record.error_type = type(error).__name__
            record.error_message = SECRETS.redact(getattr(error, "message", None) or str(error))
        self.last_record = record
        if error is not None:
            logger.info(
                "request %s failed: %s: %s", record.request_id, record.error_type, record.error_message
            )
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "request %s (%s, %s) answered by %s in %.1f ms, $%.6f; called %s",
                record.request_id,
                record.task_type,
                (record.routing or {}).get("strategy"),
                record.answered_by,
                record.processing_time_ms,
                record.cost_usd,
                [call.provider for call in record.calls],
            )
        await self.tracker.submit(record, run)
        if error is not None and self.hooks.wants("on_error"):
            await self.hooks.emit("on_error", request_id=record.request_id, error=error, record=record)
        if self.hooks.wants("after_request"):
            await self.hooks.emit("after_request", request_id=record.request_id, record=record)
        if self.metrics_collectors and self.settings.framework.enable_metrics:
            await self.collect_metrics(record)

    def _metadata(
        self, record: RequestRecord, decision: RoutingDecision | None, run: RunHandle
    ) -> dict[str, Any]:
        metadata = request_metadata(record, decision, self.tracker.run_id(run), run.run_key)
        if self.enable_profiling:
            metadata["profile"] = stage_timings(record)
        return metadata

    # ---- lifecycle ------------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Try to write every request logged so far to the tracking store. The result is truthy
        only when all of them are there; else it says how many are pending (safe in the journal)
        or were refused (dead-lettered). A timeout is never a success. Streams nobody read are
        logged as abandoned first."""
        await self._unread_streams.abandon_all()
        return await self.tracker.aflush(timeout)

    def flush_sync(self, timeout: float | None = None) -> FlushResult:
        self._abandon_unread_streams()
        return self.tracker.flush(timeout)

    def _abandon_unread_streams(self) -> None:
        """Log streams nobody read as abandoned (from synchronous code: flush_sync, close)."""
        if len(self._unread_streams):
            run_sync(self._unread_streams.abandon_all())

    def close(self) -> FlushResult:
        """End the session run and write everything still owed (a shared tracker stays open);
        what cannot be written stays in the journal, and a warning says so once.

        Called at interpreter exit for instances that were not closed."""
        self._abandon_unread_streams()
        if self._session_run is not None:
            self.tracker.end_run(self._session_run)
        if self._owns_tracker:
            return self.tracker.close()
        return self.tracker.flush()

    async def aclose(self) -> None:
        for connector in self.model_registry:
            await connector.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        self.close()

    async def __aenter__(self) -> Orchestra:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Orchestra:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        """In Jupyter: providers with their prices, routing rules, consensus and tracking as tables."""
        from orchestra.display import orchestra_html

        return orchestra_html(self)


AIOrchestrationFramework = Orchestra
"""The seed's name for `Orchestra`."""


def _price_table(settings: Settings) -> PriceTable:
    table = (
        PriceTable.from_csv(settings.resolve_path(settings.pricing.table))
        if settings.pricing.table
        else PriceTable.default()
    )
    overrides = {
        model: Price(model=model, **price.model_dump(), source="config")
        for model, price in settings.pricing.overrides.items()
    }
    return table.with_overrides(overrides) if overrides else table


def _response_cache(settings: Settings) -> ResponseCache | None:
    performance = settings.performance
    if not (performance.enable_response_caching or settings.framework.enable_caching):
        return None
    if performance.cache_backend == "redis":
        from orchestra.cache.redis import RedisCache

        url = performance.redis_url or os.environ.get("REDIS_URL")
        if not url:
            raise ConfigError(
                "performance.cache_backend is 'redis' but neither performance.redis_url nor REDIS_URL is set"
            )
        return RedisCache(url)
    from orchestra.cache.sqlite import SQLiteCache

    return SQLiteCache(settings.resolve_path(performance.cache_path))
