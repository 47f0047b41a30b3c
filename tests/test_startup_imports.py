"""Starting orchestra loads no data-frame, statistics or MLflow library: `import orchestra` and
building an `Orchestra` leave pandas, polars, pyarrow, scipy, scikit-learn and MLflow to the
code that reads tables, fits models or writes to the store (issue 17: import < 300 ms). Its
names load on first use (PEP 562): `import orchestra` alone loads none of its modules, and
building one and serving a request loads neither PyYAML nor tenacity (needed only for a config
file, a retry). Counted in a fresh interpreter, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAZY = ("pandas", "polars", "pyarrow", "scipy", "sklearn", "statsmodels", "mlflow", "sqlalchemy", "torch")
ON_FIRST_USE = ("numpy", "pydantic", "yaml", "tenacity", "openai", "httpx")
LAZY_PACKAGES = (
    "orchestra",
    "orchestra.cache",
    "orchestra.config",
    "orchestra.consensus",
    "orchestra.providers",
    "orchestra.resilience",
    "orchestra.routing",
    "orchestra.tracking",
)


def loaded_after(code: str, cwd: Path, packages: tuple[str, ...] = LAZY) -> list[str]:
    """The modules of `packages` in `sys.modules` after `code` runs in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(set(sys.modules) & set({packages!r}))))\n"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=cwd, env=env
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_orchestra_loads_none_of_the_heavy_libraries(tmp_path):
    code = "import orchestra\nnames = [getattr(orchestra, name) for name in orchestra.__all__]"
    assert loaded_after(code, tmp_path) == []


def test_building_an_orchestra_loads_none_of_the_heavy_libraries(tmp_path):
    code = (
        "from orchestra import Orchestra\n"
        "from orchestra.tracking import TrackingSettings\n"
        "config = {'models': {'a': {'type': 'function'}}, 'routing': {'rules': [{'providers': ['a']}]}}\n"
        "tracking = TrackingSettings(tracking_uri='sqlite:///mlflow.db', base_dir='.')\n"
        "orch = Orchestra(config, tracking=tracking)\n"
        "orch.close()\n"
    )
    assert loaded_after(code, tmp_path) == []


def test_import_orchestra_alone_loads_none_of_its_modules(tmp_path):
    assert loaded_after("import orchestra", tmp_path, (*LAZY, *ON_FIRST_USE)) == []
    some_of_ours = ("orchestra", "orchestra.lazy", "orchestra.errors", "orchestra.engine", "orchestra.types")
    assert loaded_after("import orchestra", tmp_path, some_of_ours) == ["orchestra", "orchestra.lazy"]


def test_serving_a_request_loads_no_yaml_and_no_retry_library(tmp_path):
    code = (
        "from orchestra import FunctionConnector, Orchestra\n"
        "from orchestra.tracking import TrackingSettings\n"
        "config = {'models': {'a': {'type': 'function'}}, 'routing': {'rules': [{'providers': ['a']}]}}\n"
        "tracking = TrackingSettings(enabled=False, base_dir='.')\n"
        "orch = Orchestra(config, tracking=tracking)\n"
        "orch.model_registry.register_connector('a', FunctionConnector('a', lambda request: 'hi'))\n"
        "assert orch.process_request_sync('hello').response == 'hi'\n"
        "orch.close()\n"
    )
    assert loaded_after(code, tmp_path, (*LAZY, "yaml", "tenacity")) == []


def test_lazy_packages_export_every_name_they_list(tmp_path):
    """`__all__`, `dir()` and `from package import name` agree for every lazily loaded package."""
    code = (
        "import importlib\n"
        f"for name in {LAZY_PACKAGES!r}:\n"
        "    package = importlib.import_module(name)\n"
        "    assert set(package.__all__) <= set(dir(package)), name\n"
        "    for attribute in package.__all__:\n"
        "        assert getattr(package, attribute) is not None, (name, attribute)\n"
        "    try:\n"
        "        package.no_such_name\n"
        "    except AttributeError:\n"
        "        pass\n"
        "    else:\n"
        "        raise AssertionError(name)\n"
        "from orchestra import Orchestra, TaskRouter\n"
        "from orchestra.engine.orchestrator import Orchestra as Defined\n"
        "assert Orchestra is Defined\n"
    )
    loaded_after(code, tmp_path)
