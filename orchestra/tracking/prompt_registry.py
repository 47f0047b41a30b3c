"""System prompts as versions in MLflow's Prompt Registry, on the configured tracking store.

    registry = PromptRegistry(tracking)
    version = registry.register("math-system", "Answer as ANSWER: <n>.", message="improved", tags={...})
    registry.set_alias("math-system", "production", version.version)
    registry.load("prompts:/math-system@production").template

References are MLflow's prompt URIs: `prompts:/name/3` (a version) or `prompts:/name@alias`.
Loading by alias never uses MLflow's prompt cache: an alias moved by a write-back or a rollback
is seen at once. Works on the SQL stores (SQLite, PostgreSQL) and on a tracking server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestra.errors import ConfigError, TrackingStoreError
from orchestra.tracking.settings import TrackingSettings
from orchestra.tracking.store import MlflowStore

PREFIX = "prompts:/"
_REFERENCE = re.compile(r"^prompts:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class PromptVersion:
    name: str
    version: int
    template: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"{PREFIX}{self.name}/{self.version}"


@dataclass(frozen=True)
class PromptReference:
    """A parsed `prompts:/name/3` or `prompts:/name@alias`."""

    name: str
    version: int | None
    alias: str | None

    @classmethod
    def parse(cls, text: str) -> PromptReference:
        match = _REFERENCE.match(text.strip())
        if match is None:
            raise ConfigError(
                f"{text!r} is not a prompt reference (prompts:/NAME/VERSION or prompts:/NAME@ALIAS)"
            )
        version = match.group("version")
        return cls(match.group("name"), int(version) if version else None, match.group("alias"))

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}" + (f"@{self.alias}" if self.alias else f"/{self.version}")


def is_reference(text: str | None) -> bool:
    return isinstance(text, str) and text.strip().startswith(PREFIX)


class PromptRegistry:
    """MLflow's Prompt Registry on the tracking store of `tracking`."""

    def __init__(self, tracking: TrackingSettings) -> None:
        self.client = MlflowStore(tracking).client

    def load(self, reference: str | PromptReference) -> PromptVersion:
        """The version a reference names (an alias as it points now)."""
        ref = reference if isinstance(reference, PromptReference) else PromptReference.parse(reference)
        try:
            if ref.alias is not None:
                found = self.client.get_prompt_version_by_alias(ref.name, ref.alias)
            else:
                found = self.client.get_prompt_version(ref.name, ref.version)
        except Exception as err:
            raise ConfigError(f"cannot load prompt {ref} from the registry: {err}") from err
        if found is None:
            raise ConfigError(f"prompt {ref} is not in the registry")
        return _version(found)

    def register(
        self, name: str, template: str, *, message: str, tags: dict[str, str] | None = None
    ) -> PromptVersion:
        """A new version of prompt `name` (created with its first version)."""
        try:
            created = self.client.register_prompt(name, template, commit_message=message, tags=tags or {})
        except Exception as err:
            raise TrackingStoreError(f"could not register a version of prompt {name!r}: {err}") from err
        return _version(created)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_prompt_alias(name, alias, version)

    def alias(self, name: str, alias: str) -> PromptVersion | None:
        """The version `alias` points to, or None."""
        try:
            return _version(self.client.get_prompt_version_by_alias(name, alias))
        except Exception:
            return None

    def tag_version(self, name: str, version: int, key: str, value: str) -> None:
        self.client.set_prompt_version_tag(name, version, key, value)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of prompt `name`, oldest first (none when it does not exist)."""
        try:
            found = list(self.client.search_prompt_versions(name))
        except Exception:
            return []
        return sorted((_version(v) for v in found), key=lambda v: v.version)


def _version(found: Any) -> PromptVersion:
    """Ours from MLflow's `PromptVersion` (a chat template is kept as its JSON text)."""
    template = found.template
    return PromptVersion(
        str(found.name),
        int(found.version),
        template if isinstance(template, str) else str(template),
        dict(found.tags or {}),
    )
