"""System prompts of routing rules: registry references resolved when `Orchestra` starts, and
the rule's prompt applied to the requests it routes.

    routing:
      rules:
        - task_type: math
          providers: [gpt-4o-mini]
          system_prompt: prompts:/math-system@production     # or prompts:/math-system/3, or text

`resolve_prompt_references(settings, tracking)` replaces each reference by the template it names
(an alias as it points at start-up) and remembers the version (`prompts:/math-system/3`), which
is logged with every request the rule routes (request tag `orchestra.system_prompt`). A request
that passes its own `system_prompt` keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestra.config.schema import RoutingRule, Settings
from orchestra.errors import ConfigError
from orchestra.routing.decision import RoutingDecision
from orchestra.tracking.prompt_registry import PromptRegistry, is_reference
from orchestra.tracking.settings import TrackingSettings

if TYPE_CHECKING:
    from orchestra.engine.records import RequestRecord

SYSTEM_PROMPT_TAG = "orchestra.system_prompt"
"""On a request whose system prompt came from the registry: the version used (prompts:/name/3)."""


def resolve_prompt_references(settings: Settings, tracking: TrackingSettings) -> None:
    """Replace every `prompts:/...` system prompt of `settings.routing.rules` by its template."""
    rules = [(i, rule) for i, rule in enumerate(settings.routing.rules) if is_reference(rule.system_prompt)]
    if not rules:
        return
    registry = PromptRegistry(tracking)
    for index, rule in rules:
        reference = str(rule.system_prompt)
        try:
            version = registry.load(reference)
        except ConfigError as err:
            raise ConfigError(f"routing.rules.{index}.system_prompt: {err}") from err
        rule.system_prompt = version.template or None
        rule._system_prompt_source = version.uri


def rule_system_prompt(
    rules: list[RoutingRule], decision: RoutingDecision, record: RequestRecord, given: str | None
) -> str | None:
    """The system prompt a request is sent with: its own, else its rule's (recorded, with the
    registry version it came from)."""
    if given is not None or decision.rule_index is None or decision.rule_index >= len(rules):
        return given
    rule = rules[decision.rule_index]
    if rule.system_prompt is None:
        return None
    record.system_prompt = rule.system_prompt
    if rule._system_prompt_source is not None:
        record.tags[SYSTEM_PROMPT_TAG] = rule._system_prompt_source
    return rule.system_prompt
