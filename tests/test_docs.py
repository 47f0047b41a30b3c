"""Documentation that cannot go stale: every docstring example (`>>>`) runs, and every public
name has a docstring and is named in the documentation (the README and docs/)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

import orchestra

ROOT = Path(__file__).resolve().parents[1]


def modules_with_examples() -> list[str]:
    """Every orchestra module whose source holds a `>>>` example."""
    names = []
    for path in sorted((ROOT / "orchestra").rglob("*.py")):
        if re.search(r"^\s*>>> ", path.read_text(encoding="utf-8"), re.MULTILINE):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert attempted > 0, f"{name} has '>>> ' lines but no docstring example"
    assert failed == 0


def test_there_are_runnable_examples() -> None:
    assert len(modules_with_examples()) >= 6


def test_every_public_name_has_a_docstring_and_is_documented() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    readme = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    undocumented, unmentioned = [], []
    for name in orchestra.__all__:
        if name == "__version__":
            continue
        value = getattr(orchestra, name)
        if not (inspect.getdoc(value) or "").strip():
            undocumented.append(name)
        if not re.search(rf"\b{re.escape(name)}\b", readme):
            unmentioned.append(name)
    assert undocumented == [] and unmentioned == []
