"""A configuration as flat MLflow params (secrets never included), so runs compare side by side."""

from __future__ import annotations

import json
from typing import Any

from orchestra.config.schema import Settings

_SECRET_FIELDS = {"api_key"}


def settings_params(settings: Settings) -> dict[str, str]:
    """`section.key` -> value; lists and dicts as JSON. API keys are left out entirely."""
    data = settings.model_dump(mode="json", exclude={"models": {"__all__": _SECRET_FIELDS}})
    params: dict[str, str] = {}
    for section, values in data.items():
        _flatten(section, values, params, depth=0)
    return params


def _flatten(prefix: str, value: Any, out: dict[str, str], depth: int) -> None:
    if isinstance(value, dict) and depth < 2 and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out, depth + 1)
    elif value is None:
        return
    elif isinstance(value, dict | list):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = str(value)
