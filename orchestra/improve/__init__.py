"""Self-improvement: learn a router from logged calls, test it offline against the current
config on held-out prompts, and write back an improved config when the evidence supports it.

    report = improve("config.yaml", training_table(load_requests(run_ids=[explore_run])))
    report.write("config.improved.yaml")
"""

from orchestra.improve.data import training_table
from orchestra.improve.loop import ImprovementReport, improve, improve_async, learned_config
from orchestra.improve.off_policy import OffPolicyEstimate, off_policy_value
from orchestra.improve.replay import explore, replay_config

__all__ = [
    "ImprovementReport",
    "OffPolicyEstimate",
    "explore",
    "improve",
    "improve_async",
    "learned_config",
    "off_policy_value",
    "replay_config",
    "training_table",
]
