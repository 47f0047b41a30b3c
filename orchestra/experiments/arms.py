"""Each arm's config and `Orchestra`: the control is the caller's; a candidate is a full config
file or dotted overrides of the control's config, sharing the control's tracker and datasets.

    raw = apply_overrides(control_raw, {"routing.rules.0.providers": ["mixtral-8x7b"]})
    arms = build_arms(orch, settings, control_raw)         # {"control": orch, "mixtral": Orchestra}

Overrides are applied to the config as written (environment placeholders kept), so a promoted
candidate is written back without any secret in it. A dotted key walks mappings by name and
lists by index (`routing.rules.0.system_prompt`); a missing mapping key is created, a missing
list index is an error.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.config.experiments import CONTROL, CandidateSettings, ExperimentSettings
from orchestra.config.files import read_yaml
from orchestra.config.loader import settings_from_dict
from orchestra.config.schema import Settings
from orchestra.errors import ConfigError
from orchestra.types import ModelProvider

if TYPE_CHECKING:
    from orchestra import Orchestra


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with each dotted key set to its value."""
    result = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = result
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"override {dotted!r}: {where} is not an index of a list of {len(node)}"
                    )
                if last:
                    node[int(part)] = copy.deepcopy(value)
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = copy.deepcopy(value)
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"override {dotted!r}: {'.'.join(parts[:depth])} is a value, not a section")
    return result


def candidate_raw(
    control_raw: dict[str, Any], candidate: CandidateSettings, base_dir: Path
) -> dict[str, Any]:
    """The candidate's config as written: its file, or the control's with its overrides."""
    if candidate.config is not None:
        path = Path(candidate.config)
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise ConfigError(f"candidate config {str(path)!r} does not exist")
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        return raw
    return apply_overrides(control_raw, candidate.overrides)


def control_raw(orch: Orchestra) -> dict[str, Any]:
    """The control's config as written: its file when it came from one, else its settings."""
    path = getattr(orch, "config_path", None)
    if path is not None:
        raw = read_yaml(path) or {}
        return dict(raw)
    return orch.settings.model_dump(mode="python", by_alias=True, exclude_unset=True)


def build_arms(
    orch: Orchestra, settings: ExperimentSettings, raw: dict[str, Any]
) -> tuple[dict[str, Orchestra], dict[str, dict[str, Any]]]:
    """Every arm's `Orchestra` (the control is `orch`) and every candidate's config as written."""
    from orchestra import Orchestra

    arms: dict[str, Orchestra] = {CONTROL: orch}
    raws: dict[str, dict[str, Any]] = {}
    base_dir = orch.settings.base_dir
    for name, candidate in settings.candidates.items():
        raws[name] = candidate_raw(raw, candidate, base_dir)
        arm_settings = settings_from_dict(
            raws[name], base_dir=base_dir, origin=f"experiment candidate {name!r}"
        )
        arm = Orchestra(arm_settings, tracker=orch.tracker, datasets=orch.datasets)
        _share_scripted_providers(orch, arm, arm_settings)
        arms[name] = arm
    return arms, raws


def _share_scripted_providers(control: Orchestra, arm: Orchestra, settings: Settings) -> None:
    """Scripted providers are registered in code: the candidate uses the control's."""
    known = set(control.model_registry.names())
    for name, provider in settings.models.items():
        if provider.type == ModelProvider.FUNCTION and name in known:
            arm.model_registry.register_connector(name, control.model_registry.get(name))
