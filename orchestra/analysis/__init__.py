"""Analysis: pure functions over logged requests (polars first; pandas accepted).

from orchestra.analysis import load_requests, ab
requests = load_requests(experiment="orchestra")
ab.ab_report(requests, arm="run_name", unit="prompt")
"""

from orchestra.analysis import ab
from orchestra.analysis.calibration import CalibrationReport, calibration
from orchestra.analysis.performance import best_provider, performance_metrics, provider_comparison
from orchestra.analysis.requests import calls_table, history, load_requests
from orchestra.analysis.winrate import (
    LengthControlledWinRate,
    WinRate,
    length_controlled_win_rate,
    win_rate,
)

__all__ = [
    "CalibrationReport",
    "LengthControlledWinRate",
    "WinRate",
    "ab",
    "best_provider",
    "calibration",
    "calls_table",
    "history",
    "length_controlled_win_rate",
    "load_requests",
    "performance_metrics",
    "provider_comparison",
    "win_rate",
]
