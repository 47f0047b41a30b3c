"""Scorers named in config: `module:function`, called as f(prompt, response) -> float | None.

scorer = load_scorer("mypackage.grading:exact_answer")
scorer("What is 6 x 7?", "ANSWER: 42")      # 1.0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from orchestra.errors import ConfigError

Scorer = Callable[[str, str], "float | None"]


def load_scorer(reference: str | Scorer | None) -> Scorer | None:
    """A scorer from `module:function` (or the callable itself; None stays None)."""
    if reference is None or callable(reference):
        return reference
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ConfigError(f"a scorer is written module:function (got {reference!r})")
    try:
        scorer = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot load scorer {reference!r}: {err}") from err
    if not callable(scorer):
        raise ConfigError(f"scorer {reference!r} is not callable")
    return scorer
