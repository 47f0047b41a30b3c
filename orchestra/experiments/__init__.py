"""Canary experiments on live traffic: deterministic sticky assignment, always-valid monitoring,
guardrails and a sample-ratio check, and an experiment that ends by itself (promote, stop or
inconclusive at a planned maximum).

    experiment = orch.start_experiment("mixtral-canary")       # config.yaml: experiments:
    await experiment.process_request(prompt, user_id="u17")
    experiment.status(); experiment.decision

Modules: `assignment` (the salted hash), `plan` (the power calculation), `sequential` (the
always-valid sequences), `decision` (the rules), `monitor` (the state), `experiment` (the live
runtime), `promotion` (write-back), `status` / `readback` (what is logged, read back),
`simulate` (whole experiments on recorded answers).
"""

from orchestra.config.experiments import CONTROL, CandidateSettings, ExperimentSettings, GuardrailSettings
from orchestra.experiments.arms import apply_overrides
from orchestra.experiments.assignment import Assignment, assign
from orchestra.experiments.experiment import Experiment, start_experiment
from orchestra.experiments.monitor import Decision, Monitor, MonitorLook, Observation
from orchestra.experiments.plan import Plan, plan_experiment
from orchestra.experiments.simulate import ReplayOutcome, arm_answers, replay_experiment, true_difference
from orchestra.experiments.status import ExperimentStatus

__all__ = [
    "CONTROL",
    "Assignment",
    "CandidateSettings",
    "Decision",
    "Experiment",
    "ExperimentSettings",
    "ExperimentStatus",
    "GuardrailSettings",
    "Monitor",
    "MonitorLook",
    "Observation",
    "Plan",
    "ReplayOutcome",
    "apply_overrides",
    "arm_answers",
    "assign",
    "plan_experiment",
    "replay_experiment",
    "start_experiment",
    "true_difference",
]
