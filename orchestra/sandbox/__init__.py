"""Running untrusted code: a separate, limited, network-less process (see `sandbox.py`)."""

from orchestra.sandbox.checks import CheckReport, CodeCheck, extract_code, run_checks
from orchestra.sandbox.limits import Outcome, SandboxLimits, SandboxResult, SandboxUnavailable
from orchestra.sandbox.sandbox import Sandbox, clean_environment

__all__ = [
    "CheckReport",
    "CodeCheck",
    "Outcome",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "clean_environment",
    "extract_code",
    "run_checks",
]
