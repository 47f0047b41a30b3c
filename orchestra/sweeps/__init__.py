"""Scripted experiment sweeps: a grid of configurations, one MLflow run each, resumable."""

from orchestra.sweeps.ray_backend import RayOptions
from orchestra.sweeps.runner import SweepSummary, render, run_sweep
from orchestra.sweeps.spec import Arm, SweepSpec, expand_arms, load_sweep

__all__ = [
    "Arm",
    "RayOptions",
    "SweepSpec",
    "SweepSummary",
    "expand_arms",
    "load_sweep",
    "render",
    "run_sweep",
]
