"""Analysis: pure functions over logged requests."""

from orchestra.analysis.winrate import WinRate, win_rate

__all__ = ["WinRate", "win_rate"]
