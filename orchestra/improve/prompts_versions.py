"""A system prompt's write-back and rollback: versions in MLflow's Prompt Registry, an alias
that moves, and the same provenance as a config write-back.

    change = write_back_prompt(report, "config.yaml", tracking)   # new version, alias moved
    change = rollback_prompt("config.yaml", "math", tracking)       # alias back one write-back

A write-back registers the accepted prompt as a new version of the task type's prompt (the
current prompt first becomes a version too, when it was plain text in the config or there was
none), tags it with the version it replaces (`orchestra.previous_version`) and the evidence,
and moves the alias (`improvement.prompts.alias`, default `production`) to it. When the task
type's rules did not reference `prompts:/<name>@<alias>` yet, the config is written back too
(through `orchestra.improve.versions`: the previous config kept, a diff); from then on only the
alias moves. Each change is logged as an MLflow run (`orchestra.kind` = `improve-prompt-
write-back` or `improve-prompt-rollback`) with the evidence and both prompts as artifacts.
Rollback moves the alias back to the version the current one replaced.
"""

from __future__ import annotations

import difflib
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestra.config.files import read_yaml
from orchestra.config.loader import load_settings
from orchestra.errors import ConfigError
from orchestra.improve.prompts import PromptImprovementReport, registry_name
from orchestra.improve.versions import ConfigChange, write_back
from orchestra.logs import get_logger
from orchestra.tracking.prompt_registry import PromptReference, PromptRegistry, PromptVersion, is_reference
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.tags import KIND_TAG

logger = get_logger("orchestra.improve.prompts")
PREVIOUS_TAG = "orchestra.previous_version"


@dataclass(frozen=True)
class PromptChange:
    """One move of a prompt's alias."""

    action: str  # write-back | rollback
    name: str
    alias: str
    previous: PromptVersion
    current: PromptVersion
    config_change: ConfigChange | None
    run_id: str | None

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.previous.template.splitlines(keepends=True),
                self.current.template.splitlines(keepends=True),
                fromfile=self.previous.uri,
                tofile=self.current.uri,
            )
        )

    def __str__(self) -> str:
        where = f"prompts:/{self.name}@{self.alias}"
        text = f"{self.action}: {where} now {self.current.uri} (was {self.previous.uri})"
        if self.config_change is not None:
            text += f"; the config now references it (previous config kept as {self.config_change.previous})"
        return text


def write_back_prompt(
    report: PromptImprovementReport, config: str | Path, tracking: TrackingSettings, *, force: bool = False
) -> PromptChange:
    """Register the accepted prompt, move the alias to it, reference it from the config."""
    if not (report.accepted or force) or report.candidate is None:
        raise ConfigError(f"the candidate prompt was not accepted ({report.reason}); use force to write it")
    path = Path(config)
    settings = load_settings(path)
    alias = settings.improvement.prompts.alias
    registry = PromptRegistry(tracking)
    name = PromptReference.parse(report.current_source).name if report.current_source else None
    name = name or registry_name(settings, report.task_type)
    previous = _current_version(registry, name, alias, report)
    evidence = report.evidence()
    current = registry.register(
        name,
        report.candidate,
        message=f"orchestra improve prompts ({report.task_type}): {report.reason}"[:500],
        tags={PREVIOUS_TAG: str(previous.version), "orchestra.task_type": report.task_type},
    )
    registry.set_alias(name, alias, current.version)
    config_change = None
    raw = dict(read_yaml(path) or {})
    if report.config is not None and report.config != raw:
        config_change = write_back(report, path, force=True)  # the gate was passed above
    run_id = _log(tracking, "write-back", name, alias, previous, current, evidence)
    return PromptChange("write-back", name, alias, previous, current, config_change, run_id)


def rollback_prompt(config: str | Path, task_type: str, tracking: TrackingSettings) -> PromptChange:
    """Move the task type's alias back to the version the current one replaced."""
    path = Path(config)
    raw = dict(read_yaml(path) or {})
    references = [
        rule.get("system_prompt")
        for rule in (raw.get("routing") or {}).get("rules") or []
        if rule.get("task_type") == task_type and is_reference(rule.get("system_prompt"))
    ]
    if not references:
        raise ConfigError(f"no rule of task type {task_type!r} takes its system prompt from the registry")
    reference = PromptReference.parse(str(references[0]))
    if reference.alias is None:
        raise ConfigError(f"{reference} names a fixed version: edit the config to change it")
    registry = PromptRegistry(tracking)
    current = registry.load(reference)
    before = current.tags.get(PREVIOUS_TAG)
    if before is None:
        raise ConfigError(f"{current.uri} replaced no earlier version: nothing to roll back")
    previous = registry.load(PromptReference(reference.name, int(before), None))
    registry.set_alias(reference.name, reference.alias, previous.version)
    registry.tag_version(reference.name, current.version, "orchestra.rolled_back", "true")
    evidence = {"action": "rollback", "restored": previous.uri, "replaced": current.uri}
    run_id = _log(tracking, "rollback", reference.name, reference.alias, current, previous, evidence)
    return PromptChange("rollback", reference.name, reference.alias, current, previous, None, run_id)


def _current_version(
    registry: PromptRegistry, name: str, alias: str, report: PromptImprovementReport
) -> PromptVersion:
    """The version the current prompt is, registering it first when it is not one yet."""
    if report.current_source is not None:
        return registry.load(report.current_source)
    pointed = registry.alias(name, alias)
    current = report.current or ""
    if pointed is not None and pointed.template == current:
        return pointed
    return registry.register(
        name,
        current,
        message=f"the system prompt of task type {report.task_type!r} before orchestra improve prompts",
        tags={"orchestra.task_type": report.task_type},
    )


def _log(
    tracking: TrackingSettings,
    action: str,
    name: str,
    alias: str,
    previous: PromptVersion,
    current: PromptVersion,
    evidence: dict[str, Any],
) -> str | None:
    """The change as a finished MLflow run; None (with a warning) when the store fails."""
    if not tracking.enabled:
        return None
    try:
        from orchestra.tracking.store import MlflowStore

        store = MlflowStore(tracking)
        run_id = store.create_run(
            f"improve prompts: {action}",
            run_key=uuid.uuid4().hex,
            params={"prompt": name, "alias": alias, "from": previous.uri, "to": current.uri},
            tags={KIND_TAG: f"improve-prompt-{action}"},
        )
        with tempfile.TemporaryDirectory(prefix="orchestra-prompt-") as folder:
            base = Path(folder)
            files = {
                "evidence.json": json.dumps(evidence, indent=1, default=str),
                "previous_prompt.txt": previous.template,
                "prompt.txt": current.template,
            }
            for file, text in files.items():
                (base / file).write_text(text, encoding="utf-8")
                store.log_artifact_file(run_id, base / file, "prompt")
        store.end_run(run_id, {}, "FINISHED", None)
        return run_id
    except Exception as err:  # the registry holds the change; only its run is missing
        logger.warning("could not log the prompt %s to MLflow (%s: %s)", action, type(err).__name__, err)
        return None
