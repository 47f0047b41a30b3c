"""Starting orchestra loads no data-frame, statistics or MLflow library: `import orchestra` and
building an `Orchestra` leave pandas, polars, pyarrow, scipy, scikit-learn and MLflow to the
code that reads tables, fits models or writes to the store (issue 17: import < 300 ms).
Counted in a fresh interpreter, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAZY = ("pandas", "polars", "pyarrow", "scipy", "sklearn", "statsmodels", "mlflow", "sqlalchemy", "torch")


def loaded_after(code: str, cwd: Path) -> list[str]:
    """The packages of `LAZY` in `sys.modules` after `code` runs in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(set(sys.modules) & set({LAZY!r}))))\n"
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
