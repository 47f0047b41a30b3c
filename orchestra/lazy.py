"""Lazy package exports (PEP 562): a package's public names, imported from their modules on first use.

`import orchestra` then costs almost nothing, and `from orchestra import Orchestra` loads only what
`Orchestra` needs (issue 17: start-up). Each package keeps its imports under `TYPE_CHECKING` for
type checkers and editors, and hands the same names to `lazy_exports` for run time:

    if TYPE_CHECKING:
        from orchestra.routing.router import TaskRouter
    else:
        __getattr__, __dir__ = lazy_exports(__name__, {"orchestra.routing.router": ["TaskRouter"]})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` for `modules` (module -> the names it exports): a
    name is imported from its module when first read, then kept in the package like an import."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
