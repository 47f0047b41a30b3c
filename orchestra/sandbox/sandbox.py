"""`Sandbox`: run untrusted Python in a separate, limited, network-less process.

sandbox = Sandbox(SandboxLimits(wall_time_s=2.0))
result = await sandbox.run("print(sum(range(10)))")
result.outcome, result.stdout        # Outcome.OK, "45\n"

Each run gets a fresh process started from a clean environment (no API keys, no proxy settings,
`PYTHONHASHSEED=0`), an empty temporary folder as its working directory, and the limits of
`SandboxLimits`. Isolation (`isolation=`):

- `"namespaces"` (needs root): new mount, network, PID, IPC and UTS namespaces; the program sees
  only read-only system folders and the interpreter, a private tmpfs `/sandbox` as its folder and
  home, no network interface but a down loopback, and runs as a user id of its own (so the process
  limit is enforced and it cannot signal or read the caller's processes). When it ends, every
  process it started is killed with its namespace.
- `"none"`: the limits, the clean environment and the folder only (the program can still read
  files the caller's user can read and open sockets). As root it still runs under its own user id.
- `"auto"` (default): `"namespaces"` when running as root and the kernel allows it, else `"none"`.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Literal

from orchestra.errors import InvalidRequest
from orchestra.logs import get_logger
from orchestra.sandbox.limits import (
    EXIT_MEMORY,
    Outcome,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
)
from orchestra.sync import run_sync

logger = get_logger("orchestra.sandbox")

Isolation = Literal["auto", "namespaces", "none"]
BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
SYSTEM_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
)
FIRST_UID = 200_000_000
"""Runs as root get a fresh user id in [FIRST_UID, FIRST_UID + 2**24): the process limit counts per
user, so concurrent runs must not share one."""

_namespaces_work: dict[str, bool] = {}


def clean_environment(home: str) -> dict[str, str]:
    """The only variables a sandboxed program sees."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def base_interpreter() -> str:
    """The interpreter behind the running one (a virtualenv's python, resolved)."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(candidate if candidate.exists() else Path(sys.executable).resolve())


class Sandbox:
    """Runs Python source under limits; `run` never raises for anything the program does."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        isolation: Isolation = "auto",
        python: str | None = None,
        read_only_paths: Sequence[str] = (),
    ) -> None:
        if isolation not in ("auto", "namespaces", "none"):
            raise InvalidRequest(f"isolation must be auto, namespaces or none (got {isolation!r})")
        self.limits = limits or SandboxLimits()
        self.python = python or base_interpreter()
        self.requested_isolation = isolation
        prefix = str(Path(self.python).resolve().parents[1])
        self.read_only_paths = _outermost([*SYSTEM_PATHS, prefix, *read_only_paths])

    # ---- isolation ----------------------------------------------------------------------------

    async def isolation(self) -> str:
        """The isolation runs get: `namespaces` or `none` (probed once per interpreter)."""
        if self.requested_isolation == "none":
            return "none"
        works = _namespaces_work.get(self.python)
        if works is None:
            works = os.geteuid() == 0 and await self._probe()
            _namespaces_work[self.python] = works
            if not works:
                logger.warning(
                    "sandbox: no namespaces (not root, or the kernel refused); runs are limited "
                    "but can reach the network and read what this user can read"
                )
        if not works and self.requested_isolation == "namespaces":
            raise SandboxUnavailable(
                "sandbox isolation 'namespaces' needs root and a kernel that allows unshare(2); "
                "use isolation='auto' or 'none'"
            )
        return "namespaces" if works else "none"

    async def _probe(self) -> bool:
        result = await self._run("pass", b"", {}, self.limits, isolate=True)
        if result.outcome != Outcome.OK:
            logger.warning("sandbox: namespaces unavailable: %s", result.details.get("setup_error"))
        return result.outcome == Outcome.OK

    # ---- runs ---------------------------------------------------------------------------------

    async def run(
        self,
        source: str,
        *,
        stdin: str | bytes = b"",
        files: Mapping[str, str] | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run `source` as a program's main module, with `files` (relative name -> text) in its folder."""
        isolate = await self.isolation() == "namespaces"
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return await self._run(source, data, dict(files or {}), limits or self.limits, isolate=isolate)

    def run_sync(self, source: str, **options) -> SandboxResult:
        """`run` for scripts and notebooks."""
        return run_sync(self.run(source, **options))

    async def run_many(
        self, sources: Sequence[str], *, concurrency: int | None = None, limits: SandboxLimits | None = None
    ) -> list[SandboxResult]:
        """Run several programs, at most `concurrency` (default: the CPU count) at once, in order."""
        gate = asyncio.Semaphore(concurrency or os.cpu_count() or 1)

        async def one(source: str) -> SandboxResult:
            async with gate:
                return await self.run(source, limits=limits)

        return list(await asyncio.gather(*(one(source) for source in sources)))

    async def _run(
        self, source: str, stdin: bytes, files: dict[str, str], limits: SandboxLimits, *, isolate: bool
    ) -> SandboxResult:
        _check_file_names(files)
        uid = FIRST_UID + secrets.randbelow(1 << 24) if os.geteuid() == 0 else None
        hostdir = Path(tempfile.mkdtemp(prefix="orchestra-sandbox-"))
        try:
            spec = {
                "isolate": isolate,
                "uid": uid,
                "limits": asdict(limits),
                "read_only_paths": self.read_only_paths,
                "files": files,
                "source": source,
            }
            workdir = _prepare(hostdir, spec)
            home = "/sandbox" if isolate else str(workdir)
            return await self._spawn(hostdir, home, stdin, limits, "namespaces" if isolate else "none")
        finally:
            shutil.rmtree(hostdir, ignore_errors=True)

    async def _spawn(
        self, hostdir: Path, home: str, stdin: bytes, limits: SandboxLimits, isolation: str
    ) -> SandboxResult:
        stdin_path = hostdir / "stdin"
        stdin_path.write_bytes(stdin)
        status_read, status_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        started = time.perf_counter()
        try:
            with stdin_path.open("rb") as stdin_file:
                process = await asyncio.create_subprocess_exec(
                    self.python,
                    "-S",
                    "-s",
                    "-B",
                    "-P",
                    str(BOOTSTRAP),
                    str(hostdir),
                    str(status_write),
                    stdin=stdin_file,
                    stdout=out_write,
                    stderr=err_write,
                    env=clean_environment(home),
                    cwd=hostdir,
                    start_new_session=True,
                    pass_fds=(status_write,),
                )
        except BaseException:
            for fd in (out_read, err_read, status_read):
                os.close(fd)
            raise
        finally:
            for fd in (status_write, out_write, err_write):
                os.close(fd)
        try:
            capture = _Capture({"out": out_read, "err": err_read}, limits.max_output_bytes)
            stopped_for = await _supervise(process, capture, limits.wall_time_s)
            wall = time.perf_counter() - started
            status = _read_status(status_read)
        finally:
            for fd in (out_read, err_read, status_read):
                os.close(fd)
        return _result(status, stopped_for, capture.text("out"), capture.text("err"), wall, limits, isolation)


class _OutputExceeded(Exception):
    pass


class _Capture:
    """Reads the run's stdout and stderr pipes (which it owns, so it may stop reading at any time),
    keeping at most `limit` bytes in all. `exceeded` is set past the limit, `finished` at EOF."""

    def __init__(self, fds: dict[str, int], limit: int) -> None:
        self.fds = fds
        self.limit = limit
        self.total = 0
        self.buffers = {name: bytearray() for name in fds}
        self.loop = asyncio.get_running_loop()
        self.exceeded = asyncio.Event()
        self.finished = asyncio.Event()
        self.open = set(fds)
        for name, fd in fds.items():
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, self._read, name)

    def _read(self, name: str) -> None:
        try:
            chunk = os.read(self.fds[name], 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._close(name)
            return
        self.buffers[name] += chunk[: max(0, self.limit - self.total)]
        self.total += len(chunk)
        if self.total > self.limit:
            self.exceeded.set()

    def _close(self, name: str) -> None:
        if name in self.open:
            self.open.discard(name)
            self.loop.remove_reader(self.fds[name])
        if not self.open:
            self.finished.set()

    def stop(self) -> None:
        for name in list(self.open):
            self._close(name)

    def text(self, name: str) -> bytes:
        return bytes(self.buffers[name])


async def _supervise(
    process: asyncio.subprocess.Process, capture: _Capture, wall_time_s: float
) -> Outcome | None:
    """Wait until the run exits, passes its output limit or its wall time; then kill its whole
    process group (whatever it left behind too) and read what is left in the pipes."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wall_time_s
    waiters = [asyncio.ensure_future(process.wait()), asyncio.ensure_future(capture.exceeded.wait())]
    stopped_for: Outcome | None = None
    try:
        done, _ = await asyncio.wait(waiters, timeout=wall_time_s, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            stopped_for = Outcome.TIMEOUT
    finally:
        for waiter in waiters:
            waiter.cancel()
        if process.returncode is None:  # its supervisor kills it, so its processes are reaped at once
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=2.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        await _until_group_gone(process.pid)
        with contextlib.suppress(TimeoutError):  # a process that left the group may hold the pipes
            await asyncio.wait_for(capture.finished.wait(), timeout=max(0.5, give_up - loop.time()))
        capture.stop()
    if stopped_for is None and capture.exceeded.is_set():
        stopped_for = Outcome.OUTPUT_LIMIT
    return stopped_for


async def _until_group_gone(group: int, bound_s: float = 10.0) -> None:
    """Wait until the killed process group has no members left (SIGKILL is delivered, and the
    processes reaped, asynchronously), so that nothing of a run outlives `run()`."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + bound_s
    while loop.time() < give_up:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            break
        await asyncio.sleep(0.002)
    logger.warning("sandbox: processes of group %d still exist after SIGKILL", group)


def _prepare(hostdir: Path, spec: dict) -> Path:
    """Lay out the run's host folder: the spec (readable by root only) and an empty folder for the
    jail's root (namespaces) or the program's working folder (none, owned by the run's user)."""
    workdir = hostdir / ("root" if spec["isolate"] else "work")
    workdir.mkdir()
    if spec["uid"] is not None and not spec["isolate"]:
        hostdir.chmod(0o711)
        os.chown(workdir, spec["uid"], spec["uid"])
    (hostdir / "spec.py").write_text(repr(spec), encoding="utf-8")
    return workdir


def _read_status(fd: int) -> dict:
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    try:
        status = ast.literal_eval(b"".join(chunks).decode() or "{}")
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return {}
    return status if isinstance(status, dict) else {}


def _result(
    status: dict,
    stopped_for: Outcome | None,
    stdout: bytes,
    stderr: bytes,
    wall: float,
    limits: SandboxLimits,
    isolation: str,
) -> SandboxResult:
    exit_code, sig, cpu = status.get("exit_code"), status.get("signal"), status.get("cpu_s")
    if status.get("setup_error"):
        outcome = Outcome.SETUP_FAILED
    elif stopped_for is not None:
        outcome = stopped_for
    elif not status:
        outcome = Outcome.KILLED
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu is not None and cpu >= limits.cpu_time_s):
        outcome = Outcome.CPU_LIMIT
    elif exit_code == EXIT_MEMORY:
        outcome = Outcome.MEMORY_LIMIT
    elif sig is not None:
        outcome = Outcome.KILLED
    else:
        outcome = Outcome.OK if exit_code == 0 else Outcome.ERROR
    details = {k: v for k, v in status.items() if k in ("setup_error", "max_rss_kb", "uid")}
    return SandboxResult(
        outcome=outcome,
        exit_code=exit_code,
        signal=sig,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        wall_time_s=wall,
        cpu_time_s=cpu,
        isolation=isolation,
        details=details,
    )


def _outermost(paths: list[str]) -> list[str]:
    """Distinct paths, dropping any inside another (binding both would nest read-only mounts)."""
    kept: list[str] = []
    for path in sorted(dict.fromkeys(os.path.normpath(p) for p in paths), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _check_file_names(files: Mapping[str, str]) -> None:
    for name in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InvalidRequest(f"sandbox file names must be relative, without '..' (got {name!r})")
