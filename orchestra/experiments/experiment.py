"""A running experiment: assign each request's unit to an arm, serve it with that arm's
`Orchestra`, log the assignment with the request, watch the metrics, and end by itself.

    experiment = orch.start_experiment("mixtral-canary")          # from config.yaml's experiments:
    result = await experiment.process_request("What is 7 x 6?", user_id="u17")
    experiment.status()          # arms, estimate and always-valid CI, SRM, guardrails, decision
    experiment.decision          # None while running; then promote / stop / inconclusive

Every request is logged by the serving arm's `Orchestra` (the control is the caller's instance;
candidates share its tracker and datasets) to that arm's run, nested under the experiment's run,
with request tags naming the experiment, the arm that served it, the arm its unit is assigned
to and the probability of that assignment (`orchestra.tracking.tags`). A request without a unit
(an anonymous user, no session) is served by the control and tagged `excluded`.

After each `look_every` analysed requests the monitor looks (`orchestra.experiments.monitor`).
When the experiment ends, the decision is tagged on its run; a promotion is written back to the
config file through the gate and provenance of `orchestra improve`; from then on every request
is served by the winner (the promoted candidate, else the control), tagged `ended`. The request
whose look ends the experiment waits for that write-back (done in a worker thread).
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import ValidationError

from orchestra.compat import deprecated
from orchestra.config.experiments import CONTROL, ExperimentSettings
from orchestra.config.loader import describe_validation_error
from orchestra.engine.options import RequestOptions, request_options
from orchestra.engine.runs import CURRENT_RUN
from orchestra.errors import ConfigError, InvalidRequest, OrchestraError
from orchestra.experiments.arms import build_arms, control_raw
from orchestra.experiments.assignment import assign, unit_key
from orchestra.experiments.monitor import Decision, Monitor, MonitorLook, Observation
from orchestra.experiments.plan import plan_experiment
from orchestra.experiments.promotion import Promotion, write_promotion
from orchestra.experiments.status import ExperimentStatus, status_from_monitor
from orchestra.logs import get_logger
from orchestra.scoring.loading import Scorer, load_scorer
from orchestra.sync import run_sync
from orchestra.tracking.params import settings_params
from orchestra.tracking.tags import (
    EXPERIMENT_ARM_TAG,
    EXPERIMENT_ASSIGNED_TAG,
    EXPERIMENT_DECISION_TAG,
    EXPERIMENT_PHASE_TAG,
    EXPERIMENT_PROBABILITY_TAG,
    EXPERIMENT_TAG,
    KIND_TAG,
)

if TYPE_CHECKING:
    from orchestra import Orchestra

logger = get_logger("orchestra.experiments")
SPEC_PARAM = "experiment.spec"
PLAN_PARAMS = ("plan.max_requests", "plan.sd", "plan.sd_basis")


class Experiment:
    """One experiment over live traffic (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: ExperimentSettings,
        control: Orchestra,
        *,
        history: pl.DataFrame | None = None,
        scorer: Scorer | str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.salt = settings.salt or name
        self.scorer = load_scorer(scorer if scorer is not None else settings.scorer)
        sd, basis = _history_sd(history, settings.primary)
        self.plan = plan_experiment(settings, sd=sd, basis=basis)
        self.monitor = Monitor(settings, self.plan)
        self.config_path: Path | None = getattr(control, "config_path", None)
        self.arms, self.candidate_configs = build_arms(control, settings, control_raw(control))
        self.tracker = control.tracker
        self.run = self.tracker.begin_run(
            f"experiment: {name}",
            params=self._params(),
            tags={KIND_TAG: "experiment", EXPERIMENT_TAG: name},
        )
        self.arm_runs = {
            arm: self.tracker.begin_run(
                f"experiment: {name} / {arm}",
                params=settings_params(orch.settings),
                tags={KIND_TAG: "experiment-arm", EXPERIMENT_TAG: name, EXPERIMENT_ARM_TAG: arm},
                parent=self.run,
            )
            for arm, orch in self.arms.items()
        }
        self.details: dict[str, Any] = {}
        self._ending: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def decision(self) -> Decision | None:
        return self.monitor.decision

    @property
    def winner(self) -> str:
        """The arm serving everyone once the experiment ended: the promoted one, else the control."""
        decision = self.monitor.decision
        return decision.arm if decision is not None and decision.arm is not None else CONTROL

    def arm_of(self, user_id: str | None = None, session_id: str | None = None) -> str | None:
        """The arm a unit is assigned to (None for a request without a unit, or unit `request`)."""
        if self.settings.unit == "request":
            return None
        key = unit_key(self.settings.unit, user_id, session_id)
        if key is None:
            return None
        return assign(key, experiment=self.name, salt=self.salt, shares=self.monitor.shares).arm

    async def process_request(
        self,
        prompt: str,
        options: RequestOptions | str | None = None,
        *,
        stream: bool = False,
        **knobs: Any,
    ) -> Any:
        """`Orchestra.process_request` under the unit's arm; the request is logged with its
        assignment and, when analysed, counted towards the decision. `stream=True` is the
        deprecated spelling of `process_request_stream`, as on `Orchestra`."""
        if stream:
            deprecated("Experiment.process_request(..., stream=True)", "use process_request_stream(...)")
        return await self._serve(prompt, request_options(options, knobs), stream=stream)

    async def process_request_stream(
        self, prompt: str, options: RequestOptions | None = None, **knobs: Any
    ) -> Any:
        """`Orchestra.process_request_stream` under the unit's arm (served, logged with its
        assignment, not analysed: a stream's outcome is not known when it returns)."""
        return await self._serve(prompt, request_options(options, knobs), stream=True)

    async def _serve(self, prompt: str, options: RequestOptions, *, stream: bool) -> Any:
        # Unit `request`: the unit is the request's own id (one a sweep predicted, else a new
        # one), so the logged request id reproduces its assignment.
        request_id = (options.request_id or uuid.uuid4().hex) if self.settings.unit == "request" else None
        arm, assigned, probability, phase = self._route(
            options.user_id, options.session_id, stream, request_id
        )
        request_tags = {
            **(dict(options.tags) if options.tags else {}),
            EXPERIMENT_TAG: self.name,
            EXPERIMENT_ARM_TAG: arm,
            EXPERIMENT_ASSIGNED_TAG: assigned,
            EXPERIMENT_PROBABILITY_TAG: f"{probability:.6g}",
            EXPERIMENT_PHASE_TAG: phase,
        }
        options = replace(options, tags=request_tags, request_id=request_id or options.request_id)
        token = CURRENT_RUN.set(self.arm_runs[arm])
        try:
            orch = self.arms[arm]
            if stream:
                result: Any = await orch.process_request_stream(prompt, options)
            else:
                result = await orch.process_request(prompt, options)
        except InvalidRequest:
            raise  # the caller's mistake, not the arm's: not counted
        except OrchestraError:
            if phase == "running":
                self.monitor.record(arm, Observation(0.0, 0.0, math.nan, True))
                await self._maybe_look()
            raise
        finally:
            CURRENT_RUN.reset(token)
        if phase == "running":
            self.monitor.record(arm, self._observation(prompt, result))
            await self._maybe_look()
        return result

    def process_request_sync(self, prompt: str, *args: Any, **kwargs: Any) -> Any:
        """`process_request` for scripts and notebooks."""
        return run_sync(self.process_request(prompt, *args, **kwargs))

    def status(self) -> ExperimentStatus:
        """Arms, the current estimate with its always-valid CI, SRM, guardrails and decision."""
        return status_from_monitor(self.name, self.monitor, self.details)

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()

    # ---- internals -----------------------------------------------------------------------

    def _route(
        self, user_id: str, session_id: str | None, stream: bool, request_id: str | None
    ) -> tuple[str, str, float, str]:
        """(arm serving, arm assigned, assignment probability, phase) of one request."""
        if self.monitor.decision is not None:
            return self.winner, self.winner, 1.0, "ended"
        key = unit_key(self.settings.unit, user_id, session_id, request_id)
        if key is None:
            return CONTROL, CONTROL, self.monitor.shares[CONTROL], "excluded"
        assignment = assign(key, experiment=self.name, salt=self.salt, shares=self.monitor.shares)
        self.monitor.assigned(assignment.arm, key)
        if not self.monitor.running(assignment.arm):
            return CONTROL, assignment.arm, assignment.probability, "excluded"
        phase = "excluded" if stream else "running"  # a stream's outcome is not known here
        return assignment.arm, assignment.arm, assignment.probability, phase

    def _observation(self, prompt: str, result: Any) -> Observation:
        metadata = result["metadata"]
        quality = metadata.get("quality")
        if self.scorer is not None:
            try:
                quality = self.scorer(prompt, result["response"] or "")
            except Exception as err:  # a broken scorer must not fail the user's request
                logger.warning(
                    "experiment %s: the scorer failed (%s: %s)", self.name, type(err).__name__, err
                )
                quality = None
        return Observation(
            None if quality is None else float(quality),
            float(metadata.get("cost_usd") or 0.0),
            float(metadata.get("latency_ms") or 0.0),
            False,
        )

    async def _maybe_look(self) -> None:
        if not self.monitor.due():
            if self._ending is not None:
                await asyncio.shield(self._ending)
            return
        look = self.monitor.look()
        self.tracker.log_metrics(self.run, _look_metrics(look), step=look.index)
        if look.decision is not None:
            self._ending = asyncio.ensure_future(self._conclude(look.decision))
            await asyncio.shield(self._ending)

    async def _conclude(self, decision: Decision) -> None:
        """Record the decision on the experiment's run and write a promotion back."""
        logger.info("experiment %s ended: %s (%s)", self.name, decision.outcome, decision.reason)
        if decision.outcome == "promote" and decision.arm is not None:
            promotion = Promotion(self.name, self.status(), self.candidate_configs[decision.arm])
            if self.settings.write_back and self.config_path is not None:
                change, run_id = await asyncio.to_thread(
                    write_promotion, promotion, self.config_path, self.tracker.settings
                )
                self.details |= {"written_back": str(change.config), "previous_kept_as": str(change.previous)}
                if run_id:
                    self.details["write_back_run"] = run_id
            else:
                self.details["written_back"] = "no (experiments.<name>.write_back off, or no config file)"
        await asyncio.to_thread(self._tag_decision, decision)

    def _tag_decision(self, decision: Decision) -> None:
        if not self.tracker.enabled:
            return
        try:
            from orchestra.tracking.store import MlflowStore

            run_id = self.tracker.run_id(self.run)
            if run_id is None:
                assert self.run.created is not None
                run_id = self.run.created.result(30)
            if run_id is None:
                return
            store = MlflowStore(self.tracker.settings)
            store.set_tags(
                run_id,
                {
                    EXPERIMENT_DECISION_TAG: decision.outcome,
                    f"{EXPERIMENT_DECISION_TAG}.arm": decision.arm or "",
                    f"{EXPERIMENT_DECISION_TAG}.reason": decision.reason[:4000],
                },
            )
        except Exception as err:  # the decision stands; only its record on the run is missing
            logger.warning("experiment %s: could not tag the decision on its run (%s)", self.name, err)

    def _params(self) -> dict[str, Any]:
        spec = self.settings.model_dump_json(exclude_defaults=True)
        params: dict[str, Any] = {
            "plan.max_requests": self.plan.max_requests,
            "plan.sd": self.plan.sd,
            "plan.sd_basis": self.plan.sd_basis,
            "plan.fixed_horizon": json.dumps(self.plan.fixed_horizon),
            "unit": self.settings.unit,
            "primary": self.settings.primary,
            "shares": json.dumps(self.monitor.shares),
        }
        if len(spec) <= 6000:
            params[SPEC_PARAM] = spec
        return params

    def close(self) -> None:
        """End the experiment's runs (the experiment's state stays readable) and close the
        candidates' `Orchestra` instances (the control is the caller's)."""
        if self._closed:
            return
        self._closed = True
        for run in self.arm_runs.values():
            self.tracker.end_run(run)
        self.tracker.end_run(self.run)
        for arm, orch in self.arms.items():
            if arm != CONTROL:
                orch.close()

    async def aclose(self) -> None:
        """`close`, after closing the candidates' own connectors (not those shared with the control)."""
        shared = {id(connector) for connector in self.arms[CONTROL].model_registry}
        for arm, orch in self.arms.items():
            if arm != CONTROL:
                for connector in orch.model_registry:
                    if id(connector) not in shared:
                        await connector.aclose()
        self.close()


def start_experiment(
    orch: Orchestra,
    name: str,
    settings: ExperimentSettings | dict[str, Any] | None = None,
    **options: Any,
) -> Experiment:
    """Start experiment `name` on `orch`'s traffic (its spec from the config's `experiments:`
    section unless `settings` is given); `history` (logged requests) sets the power calculation's
    sd, `scorer` overrides the configured one."""
    if settings is None:
        if name not in orch.settings.experiments:
            known = sorted(orch.settings.experiments)
            raise ConfigError(
                f"no experiment {name!r} under experiments: in the config (configured: {known})"
            )
        settings = orch.settings.experiments[name]
    elif isinstance(settings, dict):
        try:
            settings = ExperimentSettings.model_validate(settings)
        except ValidationError as err:
            message = describe_validation_error(err, ExperimentSettings)
            raise ConfigError(f"experiment {name!r}: {message}") from None
    return Experiment(name, settings, orch, **options)


def _history_sd(history: pl.DataFrame | None, primary: str) -> tuple[float | None, str]:
    if history is None or history.is_empty():
        return None, ""
    if primary == "error_rate" and "status" in history.columns:
        values = (history["status"] != "ok").cast(pl.Float64)
    else:
        column = {"quality": "quality", "cost": "cost_usd"}.get(primary, primary)
        if column not in history.columns:
            return None, ""
        values = history[column].drop_nulls().cast(pl.Float64)
    if values.len() < 2:
        return None, ""
    return float(values.std() or 0.0), f"{values.len()} logged requests"  # type: ignore[arg-type]


def _look_metrics(look: MonitorLook) -> dict[str, float]:
    metrics: dict[str, float] = {"experiment.requests": float(look.total)}
    if look.srm is not None:
        metrics["experiment.srm_p"] = look.srm.p_value
    for arm, candidate in look.candidates.items():
        if candidate.primary is not None:
            metrics |= {
                f"experiment.{arm}.effect": candidate.primary.effect,
                f"experiment.{arm}.ci_low": candidate.primary.ci_low,
                f"experiment.{arm}.ci_high": candidate.primary.ci_high,
                f"experiment.{arm}.p_value": candidate.primary.p_value,
            }
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
