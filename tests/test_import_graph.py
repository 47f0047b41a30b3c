"""The import graph: providers know nothing of routing, the engine or logging to MLflow, and
routing does not reach into tracking (it reads the engine's record)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "orchestra"


def module_file(name: str) -> Path | None:
    """The file of module `name` (a package's __init__.py), if it is one of orchestra's."""
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / relative / "__init__.py", PACKAGE / relative.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imports_in(tree: ast.AST) -> set[str]:
    """The orchestra modules named by the import statements among `tree`'s nodes."""
    found: set[str] = set()
    for node in ast.walk(tree) if not isinstance(tree, list) else tree:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("orchestra.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orchestra."):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return {module for module in found if module_file(module) is not None}


def imported_by(name: str) -> set[str]:
    """Orchestra modules `name` imports when it is imported: its module-level imports (not the
    ones inside functions, nor those only for type checkers)."""
    path = module_file(name)
    assert path is not None, name
    tree = ast.parse(path.read_text(encoding="utf-8"))
    statements = [node for node in tree.body if not _type_checking_only(node)]
    return imports_in(
        [
            node
            for statement in statements
            for node in ast.walk(statement)
            if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        + [
            node
            for statement in statements
            if isinstance(statement, ast.ClassDef)
            for node in _class_level(statement)
        ]
    )


def _type_checking_only(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _class_level(klass: ast.ClassDef) -> list[ast.AST]:
    """A class body's statements run at import; its methods' bodies do not."""
    return [
        node
        for statement in klass.body
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(statement)
    ]


def closure(roots: list[str]) -> set[str]:
    """Every orchestra module reachable from `roots`, with the packages each one lives in (their
    __init__ runs on import) but not the top-level `orchestra` package, which imports everything."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        parents = [".".join(parts[:i]) for i in range(2, len(parts))]
        todo += [m for m in imported_by(name) | set(parents) if m not in seen]
    return seen


def modules_of(package: str) -> list[str]:
    folder = PACKAGE / package
    return [f"orchestra.{package}"] + [
        f"orchestra.{package}.{path.stem}" for path in sorted(folder.glob("*.py")) if path.stem != "__init__"
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("providers", ("orchestra.routing", "orchestra.tracking", "orchestra.engine", "orchestra.consensus")),
        ("routing", ("orchestra.tracking",)),
        ("consensus", ("orchestra.tracking", "orchestra.engine")),
    ],
)
def test_a_layer_imports_nothing_of_the_layers_above_it(package, forbidden):
    reached = closure(modules_of(package))
    assert sorted(m for m in reached if m.startswith(forbidden)) == []


def test_no_provider_module_names_routing_tracking_or_the_engine_even_lazily():
    above = ("orchestra.routing", "orchestra.tracking", "orchestra.engine", "orchestra.consensus")
    for path in sorted((PACKAGE / "providers").glob("*.py")):
        named = imports_in(ast.parse(path.read_text(encoding="utf-8")))
        assert sorted(m for m in named if m.startswith(above)) == [], path.name


def test_importing_the_providers_loads_no_routing_tracking_or_engine_module():
    """At run time too: every provider module imported, the top-level package left out."""
    code = (
        "import importlib, pkgutil, sys, types\n"
        "top = types.ModuleType('orchestra')\n"
        f"top.__path__ = [{str(PACKAGE)!r}]\n"
        "sys.modules['orchestra'] = top  # the package's own __init__ imports everything\n"
        "import orchestra.providers\n"
        "for info in pkgutil.iter_modules(orchestra.providers.__path__, 'orchestra.providers.'):\n"
        "    importlib.import_module(info.name)\n"
        "above = ('orchestra.routing', 'orchestra.tracking', 'orchestra.engine', 'orchestra.consensus')\n"
        "print(sorted(m for m in sys.modules if m.startswith(above)))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
