"""The benchmark scripts are not imported by any test (they are run by hand, and some run for
minutes), so a module they import by an old path would only fail when someone runs them. Every
`from orchestra... import name` in benchmarks/ must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def orchestra_imports(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "orchestra":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "orchestra"]
    return found


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_every_orchestra_import_of_a_benchmark_resolves(path: Path) -> None:
    missing = []
    for module_name, name in orchestra_imports(path):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        if name and name != "*" and not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                missing.append(f"{module_name}.{name}")
    assert missing == []
