"""What a sandboxed run may use, and what came of it.

limits = SandboxLimits(wall_time_s=2.0, memory_mb=256)
result = await Sandbox(limits).run("print(1 + 1)")
result.outcome, result.stdout   # Outcome.OK, "2\n"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from orchestra.errors import ConfigError, OrchestraError

EXIT_MEMORY = 86
"""Exit status of a candidate that raised `MemoryError` (it hit the memory limit)."""
EXIT_SETUP = 87
"""Exit status of the sandbox's own set-up failing (no namespaces, a mount refused, ...)."""


class SandboxUnavailable(OrchestraError):
    """The sandbox cannot give the isolation asked for on this machine (e.g. namespaces as non-root)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. Wall time is enforced by the caller (the whole process group is killed);
    CPU time, memory (address space), processes and file size by `setrlimit` in the child;
    output size by the caller, which kills the run once stdout + stderr pass `max_output_bytes`."""

    wall_time_s: float = 10.0
    cpu_time_s: int = 5
    memory_mb: int = 512
    max_processes: int = 16
    max_output_bytes: int = 1_000_000
    max_file_mb: int = 16
    max_open_files: int = 64

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ConfigError(f"sandbox limit {name} must be > 0 (got {value!r})")


class Outcome(StrEnum):
    """How a run ended. Everything but `OK` is a failure."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CPU_LIMIT = "cpu_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    KILLED = "killed"
    SETUP_FAILED = "setup_failed"


@dataclass(frozen=True)
class SandboxResult:
    """One run: outcome, exit status, captured output (truncated at the limit) and resource use."""

    outcome: Outcome
    exit_code: int | None
    signal: int | None
    stdout: str
    stderr: str
    wall_time_s: float
    cpu_time_s: float | None
    isolation: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
