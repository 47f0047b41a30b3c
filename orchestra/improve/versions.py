"""Write-back with provenance: the previous config kept, a readable diff, and rollback.

    change = write_back(report, "config.yaml")        # keeps config.versions/<time>.yaml
    print(change.diff)
    rollback("config.yaml")                           # the previous version is back

Every config a write-back replaces is kept in `<config stem>.versions/` beside the config
(named by UTC time), with the evidence of the write-back (`<time>.evidence.json`) and a line in
`history.jsonl`. Rollback restores the newest kept version and steps back through them; the
config a rollback replaces is kept too (`<time>.rolled-back.yaml`), outside that sequence. The
learned policies live in their own time-stamped folders, so a restored config finds its policy.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from orchestra.errors import ConfigError

HISTORY = "history.jsonl"


class Accepted(Protocol):
    """What a write-back needs of a decision: an `ImprovementReport`, an experiment's promotion,
    a system prompt's improvement."""

    @property
    def accepted(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    def render(self) -> str: ...

    def evidence(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ConfigChange:
    """One replacement of the config file."""

    config: Path
    previous: Path  # where the replaced text was kept
    diff: str
    action: str  # write-back | rollback
    at: str


def versions_folder(config: Path) -> Path:
    return config.with_name(f"{config.stem}.versions")


def versions(config: str | Path) -> list[Path]:
    """The kept versions of `config`, oldest first."""
    folder = versions_folder(Path(config))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".rolled-back.yaml"))


def history(config: str | Path) -> list[dict[str, Any]]:
    """The write-backs and rollbacks of `config`, oldest first."""
    path = versions_folder(Path(config)) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_back(
    report: Accepted, config: str | Path, *, force: bool = False, now: datetime | None = None
) -> ConfigChange:
    """Replace `config` with the report's candidate config (`report.render()`), keeping the
    current one. Refuses unless the report was accepted (or `force`)."""
    if not report.accepted and not force:
        raise ConfigError(f"the candidate config was not accepted ({report.reason}); use force to write it")
    path = Path(config)
    change = _replace(path, report.render(), "write-back", now, evidence=report.evidence())
    return change


def rollback(config: str | Path, *, now: datetime | None = None) -> ConfigChange:
    """Restore the newest kept version of `config` (the one before the last change)."""
    path = Path(config)
    kept = versions(path)
    if not kept:
        raise ConfigError(f"no earlier version of {path.name} is kept (looked in {versions_folder(path)})")
    restored = kept[-1]
    text = restored.read_text(encoding="utf-8")
    change = _replace(path, text, "rollback", now, evidence={"restored": restored.name})
    restored.rename(restored.with_suffix(".restored"))  # it is the config again: out of the sequence
    return change


def _replace(
    path: Path, text: str, action: str, now: datetime | None, *, evidence: dict[str, Any]
) -> ConfigChange:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    moment = now or datetime.now(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S%fZ")
    folder = versions_folder(path)
    folder.mkdir(exist_ok=True)
    old = path.read_text(encoding="utf-8")
    kept = folder / (f"{stamp}.yaml" if action == "write-back" else f"{stamp}.rolled-back.yaml")
    kept.write_text(old, encoding="utf-8")
    (folder / f"{stamp}.evidence.json").write_text(
        json.dumps({"action": action, **evidence}, indent=1, default=str), encoding="utf-8"
    )
    temporary = path.with_name(f".{path.name}.{stamp}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)  # atomic: a reader sees the old or the new config, never half
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{path.name} (kept as {folder.name}/{kept.name})",
            tofile=f"{path.name} ({action})",
        )
    )
    entry = {"at": moment.isoformat(), "action": action, "kept": kept.name, "status": evidence.get("status")}
    with (folder / HISTORY).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    return ConfigChange(path, kept, diff, action, moment.isoformat())
