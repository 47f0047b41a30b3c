"""Self-improvement: learn a router or a cascade from logged calls, test it against the current
config on prompts used for nothing else, and write back an improved config (with its previous
version kept) when the evidence supports it.

    report = improve("config.yaml", training_table(load_requests(run_ids=[explore_run])))
    print(report); report.status                       # accepted | proposed | rejected
"""

from orchestra.improve.data import recorded_table, training_table
from orchestra.improve.gate import GateDecision, PowerCheck, decide, power_check
from orchestra.improve.loop import improve, improve_async, offline_cycle
from orchestra.improve.off_policy import OffPolicyEstimate, off_policy_value
from orchestra.improve.replay import explore, replay_config
from orchestra.improve.report import ImprovementReport
from orchestra.improve.splits import Split, split_prompts

__all__ = [
    "GateDecision",
    "ImprovementReport",
    "OffPolicyEstimate",
    "PowerCheck",
    "Split",
    "decide",
    "explore",
    "improve",
    "improve_async",
    "off_policy_value",
    "offline_cycle",
    "power_check",
    "recorded_table",
    "replay_config",
    "split_prompts",
    "training_table",
]
