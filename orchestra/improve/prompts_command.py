"""`orchestra improve prompts --task-type T`: propose better system prompts from the logged
failures of a task type; keep one only when it passes the gate.

orchestra improve prompts --task-type math --config config.yaml              # search, confirm, write back
orchestra improve prompts --task-type math --config config.yaml --rollback   # move the alias back

Providers are the config's (a scripted `function` provider is registered in code, so it cannot
serve this command; see `improve_prompts` for Python).
"""

from __future__ import annotations

from orchestra.config.loader import load_settings
from orchestra.errors import ConfigError
from orchestra.improve.prompts import improve_prompts_async
from orchestra.improve.prompts_versions import rollback_prompt, write_back_prompt
from orchestra.sync import run_sync
from orchestra.tracking.settings import load_tracking_settings


def main(
    config: str, *, task_type: str | None, tracking_path: str | None = None, rollback: bool = False
) -> int:
    if not task_type:
        raise ConfigError("orchestra improve prompts needs --task-type")
    settings = load_settings(config)
    tracking = load_tracking_settings(tracking_path, search_from=settings.base_dir)
    if rollback:
        change = rollback_prompt(config, task_type, tracking)
        print(change)
        print(change.diff)
        return 0
    report = run_sync(improve_prompts_async(config, task_type, tracking=tracking))
    print(report)
    if not report.accepted:
        print("no prompt written")
        return 0
    change = write_back_prompt(report, config, tracking)
    print(change)
    print(change.diff)
    if change.config_change is not None:
        print(change.config_change.diff)
    if change.run_id:
        print(f"write-back logged as MLflow run {change.run_id}")
    return 0
