"""`Orchestra`: route -> call providers in parallel -> choose -> record -> result, for every request.

    orch = Orchestra.from_config("config.yaml")
    result = await orch.process_request("Name three primes.", task_type="general", user_id="u1")
    result.response, result.metadata.providers_used

`process_request` is the whole path of one request, and `Orchestra` is the only writer of its
record: it routes, builds the per-request `Request` (request.py), records what its steps return
(the answers, the choice), then finishes the record (the journal has it before the call returns)
and returns a `RequestResult` (result.py).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

from orchestra.cache.base import ResponseCache
from orchestra.compat import deprecated
from orchestra.config.loader import load_settings
from orchestra.config.schema import Settings
from orchestra.consensus.base import ConsensusOutcome
from orchestra.consensus.manager import ConsensusManager
from orchestra.engine.hooks import Hooks
from orchestra.engine.observability import Observability, stage_timings
from orchestra.engine.options import RequestKnobs, RequestOptions, request_options
from orchestra.engine.records import RequestRecord
from orchestra.engine.request import Choice, Request
from orchestra.engine.result import RequestMetadata, RequestResult
from orchestra.engine.runs import CURRENT_RUN, RunScope
from orchestra.engine.streaming import StreamingResponse, UnreadStreams, stream_error
from orchestra.engine.validation import is_request_id, record_fields, validate_request
from orchestra.errors import (
    ConfigError,
    InvalidRequest,
    OrchestraError,
    StreamAbandoned,
    StreamClosed,
)
from orchestra.logs import configure_logging, get_logger
from orchestra.metrics import MetricsCollector, configured_collectors
from orchestra.prompts.references import resolve_prompt_references, rule_system_prompt
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.pricing import Price, PriceTable
from orchestra.providers.recorded import ReplayDataset
from orchestra.providers.registry import BuildContext, ModelRegistry, build_connector
from orchestra.redact import SECRETS, set_pattern_detection
from orchestra.resilience.budget import Budget
from orchestra.resilience.factory import Limits, build_guard, limits_in_use
from orchestra.resilience.guard import ProviderGuard
from orchestra.routing.decision import RoutingDecision
from orchestra.routing.factory import build_evaluators, load_cascade_policy, load_learned_policy
from orchestra.routing.history import PerformanceHistory
from orchestra.routing.router import TaskRouter
from orchestra.sync import run_sync
from orchestra.tracking.outcome import FlushResult
from orchestra.tracking.params import settings_params
from orchestra.tracking.reader import load_requests
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.tags import KIND_TAG
from orchestra.tracking.tracker import RunHandle, Tracker
from orchestra.types import ModelProvider

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
        `datasets`) to share one tracking writer (and loaded datasets) between instances.

        Construction reads the config and builds the providers (loading the recorded datasets
        replay providers answer from), and nothing more: the tracking journal and store (e.g.
        `./mlruns`), routing history and the response cache are opened by `await orch.start()`,
        `async with Orchestra(...)`, or the first request."""
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
        resolve_prompt_references(self.settings, self.tracking_settings)  # only rules naming prompts:/
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
        self._started = False
        self._starting = threading.Lock()
        self._session_run: RunHandle | None = None
        self.last_record: RequestRecord | None = None
        self._cache: ResponseCache | None = None
        self._cache_opened = False
        self._guards: dict[str, ProviderGuard] = {}
        self._unread_streams = UnreadStreams()
        self.limits: Limits = limits_in_use()
        """Where rate limiters and budgets come from: this process's, or a cluster's when made
        inside `using_limits` (a Ray sweep's worker); a run's budget is `limits.budget("run:<key>")`."""
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

    async def start(self) -> Orchestra:
        """Open what construction leaves for later: the tracking journal and writers (the store,
        e.g. `./mlruns`, is created then), the routing history logged by earlier runs, the
        response cache. The first request does it too; calling it again does nothing.

            orch = await Orchestra.from_config("config.yaml").start()
        """
        if not self._started:
            await asyncio.to_thread(self._start_now)
        return self

    def _start_now(self) -> None:
        with self._starting:
            if self._started:
                return
            self.tracker.start()
            self._load_history()
            _ = self.cache
            self._started = True

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache (`performance.enable_response_caching`), opened on first use."""
        if not self._cache_opened:
            self._cache = _response_cache(self.settings)
            self._cache_opened = True
        return self._cache

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
            guard = self._guards[name] = build_guard(name, connector, self.settings, self.cache, self.limits)
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

    @overload
    async def process_request(
        self,
        prompt: str,
        options: RequestOptions | None = None,
        *,
        stream: Literal[False] = False,
        **knobs: Unpack[RequestKnobs],
    ) -> RequestResult: ...

    @overload
    async def process_request(
        self,
        prompt: str,
        options: RequestOptions | None = None,
        *,
        stream: Literal[True],
        **knobs: Unpack[RequestKnobs],
    ) -> StreamingResponse: ...

    async def process_request(
        self,
        prompt: str,
        options: RequestOptions | None = None,
        *,
        stream: bool = False,
        **knobs: Unpack[RequestKnobs],
    ) -> RequestResult | StreamingResponse:
        """Route, call, choose, log; returns a `RequestResult` (also readable as the original
        `{"response": str, "metadata": {...}}` dict).

        `options` (a `RequestOptions`) and the keywords (its field names, which win) say how:
        task_type, user_id, session_id, system_prompt, temperature, max_tokens, tags, timeout
        (the whole request; default `performance.request_timeout`), require_consensus,
        min_providers, complexity_override, execution, schema, request_id (the id it is logged under;
        a sweep's, predicted).
        At most `performance.max_concurrent_requests` run at once; more wait for a slot.
        Raises an `OrchestraError` (after logging the failed request) when no answer is possible.
        `stream=True` is the deprecated spelling of `process_request_stream`.
        """
        if stream:
            deprecated("process_request(..., stream=True)", "use process_request_stream(...)")
            return await self.process_request_stream(prompt, options, **knobs)
        options = self._options(options, knobs)
        if not self._started:
            await self.start()
        async with self._request_slot():
            started, run, record = await self._open(prompt, options)
            decision: RoutingDecision | None = None
            outcome: ConsensusOutcome | None = None
            try:
                request = await self._route(prompt, options, record, run)
                decision = request.decision
                answers = await request.answers()
                record.add_calls(answers.calls, answers.latency_ms)
                if answers.cascade is not None and record.routing is not None:
                    record.routing["cascade"] = answers.cascade
                choice = await request.choose(answers)
                outcome = choice.outcome
                self._record_choice(record, choice)
            except Exception as err:
                await self._finish(record, run, started, error=_with_request_id(err, record))
                raise
            await self._finish(record, run, started)
            return self._result(record, decision, outcome, run)

    async def process_request_stream(
        self, prompt: str, options: RequestOptions | None = None, **knobs: Unpack[RequestKnobs]
    ) -> StreamingResponse:
        """Like `process_request`, but the answer comes as text deltas: iterate the returned
        `StreamingResponse` (single-provider routes; failures before the first delta fail over).
        The request is logged once, when the stream ends, breaks or is closed; a stream never
        read is logged as `abandoned`."""
        options = self._options(options, knobs)
        if not self._started:
            await self.start()
        async with self._request_slot():
            started, run, record = await self._open(prompt, options)
            try:
                request = await self._route(prompt, options, record, run)
                if len(request.decision.chosen) > 1:
                    raise InvalidRequest(
                        f"streaming needs a single-provider route; this one calls {request.decision.chosen} "
                        "(consensus or min_providers > 1)",
                        request_id=record.request_id,
                    )
            except Exception as err:
                await self._finish(record, run, started, error=_with_request_id(err, record))
                raise
            return self._streaming(record, run, started, request)

    def process_request_sync(
        self, prompt: str, options: RequestOptions | None = None, **knobs: Unpack[RequestKnobs]
    ) -> RequestResult:
        """`process_request` for scripts and notebooks (works inside Jupyter's running loop)."""
        return run_sync(self.process_request(prompt, options, **knobs))

    def _options(self, options: RequestOptions | str | None, knobs: Mapping[str, Any]) -> RequestOptions:
        """The request's options: `options` with the keywords applied, the task type filled in."""
        if not knobs.get("task_type") and (
            options is None or (isinstance(options, RequestOptions) and not options.task_type)
        ):  # one copy of the options instead of two
            knobs = {**knobs, "task_type": self.settings.framework.default_task_type}
        options = request_options(options, knobs)
        if not options.task_type:
            options = replace(options, task_type=self.settings.framework.default_task_type)
        return options

    async def _open(self, prompt: str, options: RequestOptions) -> tuple[float, RunHandle, RequestRecord]:
        """A request that got its slot: when it started, its run and its new record."""
        started = time.perf_counter()
        run = await self._run_for_request()
        return started, run, self._new_record(prompt, options, run)

    async def _run_for_request(self) -> RunHandle:
        run = self.current_run()
        if run.run_id is None:
            await self.tracker.wait_created(run)  # at once when already created (or journaled)
        return run

    def _new_record(self, prompt: str, options: RequestOptions, run: RunHandle) -> RequestRecord:
        # A request_id that is not one is refused by validate_request; the record gets a new one.
        given = options.request_id
        return RequestRecord(
            request_id=given if is_request_id(given) else uuid.uuid4().hex,
            run_key=run.run_key,
            start_ns=time.time_ns(),
            end_ns=0,
            **record_fields(prompt, options),
        )

    async def _route(
        self, prompt: str, options: RequestOptions, record: RequestRecord, run: RunHandle
    ) -> Request:
        """Check the request, route it, and return it ready to be served."""
        validate_request(prompt, options, record.request_id)
        task_type = record.task_type
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
            complexity_override=options.complexity_override,
            require_consensus=options.require_consensus,
            min_providers=options.min_providers,
        )
        record.route_end_ns = time.time_ns()
        record.routing = decision.as_dict()
        system_prompt = rule_system_prompt(self.task_router.rules, decision, record, options.system_prompt)
        if system_prompt != options.system_prompt:
            options = replace(options, system_prompt=system_prompt)
        if self.hooks.wants("after_route"):
            await self.hooks.emit("after_route", request_id=record.request_id, decision=decision)
        timeout = (
            options.timeout if options.timeout is not None else self.settings.performance.request_timeout
        )
        deadline = asyncio.get_running_loop().time() + timeout
        return Request(
            record.request_id, prompt, task_type, options, decision, deadline, self._run_budget(run), self
        )

    @staticmethod
    def _record_choice(record: RequestRecord, choice: Choice) -> None:
        """Write what choosing decided: extra answers asked for, the consensus, the answer (or
        raise the choice's error, once the rest is recorded)."""
        for more in choice.more:
            record.add_calls(more.calls, more.latency_ms)
        if choice.consensus_start_ns:
            record.consensus_start_ns = choice.consensus_start_ns
        if choice.outcome is not None:
            record.consensus_end_ns = choice.consensus_end_ns
            record.consensus = choice.outcome.as_dict() | {"rounds": choice.rounds}
        if choice.error is not None:
            raise choice.error
        answer = choice.answer
        assert answer is not None
        record.response = answer.content
        record.answered_by = answer.provider
        record.quality = answer.metadata.get("quality")
        record.confidence = answer.confidence_score

    def _streaming(
        self, record: RequestRecord, run: RunHandle, started: float, request: Request
    ) -> StreamingResponse:
        finished: list[RequestResult] = []

        async def deltas() -> AsyncGenerator[str, None]:
            error: BaseException | None = None
            parts: list[str] = []
            items = request.stream()
            try:
                async for item in items:
                    if isinstance(item, str):
                        parts.append(item)
                        yield item
                        continue
                    record.add_calls([item], item.latency_ms)
                    if item.ok:
                        record.response = item.content
                        record.answered_by = item.provider
                        record.quality = item.quality
                        record.confidence = item.confidence
            except GeneratorExit:
                record.response = "".join(parts)
                error = StreamClosed("the consumer closed the stream early", request_id=record.request_id)
                raise
            except Exception as err:
                if parts:  # what reached the consumer before the stream broke
                    record.response = "".join(parts)
                error = stream_error(err, record)
                raise error from (None if error is err else err)
            except BaseException as err:
                record.response = "".join(parts)
                error = err
                raise
            finally:
                await items.aclose()
                await self._finish(record, run, started, error=error)
                finished.append(self._result(record, request.decision, None, run))

        async def abandon() -> None:
            error = StreamAbandoned("the stream was never read", request_id=record.request_id)
            await self._finish(record, run, started, error=error)

        unread = self._unread_streams.add(record.request_id, abandon)
        return StreamingResponse(
            deltas(),
            lambda: finished[0] if finished else None,
            unread=unread,
            streams=self._unread_streams,
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

    def _run_budget(self, run: RunHandle) -> Budget | None:
        limit = self.settings.performance.run_budget_usd
        if limit is None:
            return None
        if run.run_key not in self._run_budgets:
            self._run_budgets[run.run_key] = self.limits.budget(
                f"run:{run.run_key}", limit, f"run {run.name!r}"
            )
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

    def _result(
        self,
        record: RequestRecord,
        decision: RoutingDecision | None,
        outcome: ConsensusOutcome | None,
        run: RunHandle,
    ) -> RequestResult:
        profile = stage_timings(record) if self.enable_profiling else None
        metadata = RequestMetadata.of(record, decision, outcome, self.tracker.run_id(run), profile)
        return RequestResult(record.response or "", metadata)

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
        if self._cache is not None:
            await self._cache.aclose()
        self.close()

    async def __aenter__(self) -> Orchestra:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Orchestra:
        self._start_now()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        """In Jupyter: providers with their prices, routing rules, consensus and tracking as tables."""
        from orchestra.display import orchestra_html

        return orchestra_html(self)


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
    if not performance.enable_response_caching:
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


def _with_request_id(error: BaseException, record: RequestRecord) -> BaseException:
    """`error`, carrying the request's id when it is ours (it may have come without one)."""
    if isinstance(error, OrchestraError):
        error.request_id = error.request_id or record.request_id
    return error
