"""Analysis: pure functions over logged requests."""

from orchestra.analysis.calibration import CalibrationReport, calibration
from orchestra.analysis.winrate import WinRate, win_rate

__all__ = ["CalibrationReport", "WinRate", "calibration", "win_rate"]
