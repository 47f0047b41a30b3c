"""The sandbox: every limit has its own test, and so has every kind of harm it must stop.

Runs here are as root, so they get namespaces (the CI machine is the same); the `none` tests check
that the limits still hold without them. No test depends on timing: a program that hangs hangs
whatever the load, and the CPU test's wall limit is sixty times its CPU limit.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from orchestra.errors import ConfigError, InvalidRequest
from orchestra.sandbox import Outcome, Sandbox, SandboxLimits, clean_environment

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the namespace sandbox needs root (CI runs as root)"
)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(wall_time_s=20.0, cpu_time_s=5))


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if int(line.split()[1]) == uid:
            found.append(int(entry.name))
    return found


async def test_runs_a_program_with_stdin_and_files(sandbox: Sandbox):
    source = "import sys\nprint(sys.stdin.read().upper(), open('data.txt').read())"
    result = await sandbox.run(source, stdin="hello", files={"data.txt": "42"})
    assert result.outcome == Outcome.OK
    assert result.stdout == "HELLO 42\n"
    assert result.isolation == "namespaces"


async def test_the_program_starts_in_an_empty_private_folder_under_its_own_user(sandbox: Sandbox):
    source = "import os\nprint(os.getcwd(), os.listdir('.'), os.getuid() != 0, os.getgid() != 0)"
    result = await sandbox.run(source)
    assert result.stdout.split() == ["/sandbox", "[]", "True", "True"]


async def test_a_failing_program_is_an_error_with_its_exit_code(sandbox: Sandbox):
    result = await sandbox.run("raise SystemExit(3)")
    assert (result.outcome, result.exit_code) == (Outcome.ERROR, 3)
    raised = await sandbox.run("1 / 0")
    assert raised.outcome == Outcome.ERROR and "ZeroDivisionError" in raised.stderr


async def test_wall_time_limit_kills_a_program_that_hangs(sandbox: Sandbox):
    result = await sandbox.run("import time\ntime.sleep(3600)", limits=SandboxLimits(wall_time_s=0.5))
    assert result.outcome == Outcome.TIMEOUT
    assert not processes_of(result.details.get("uid", -1))


async def test_cpu_time_limit_kills_a_busy_loop(sandbox: Sandbox):
    result = await sandbox.run("while True:\n    pass", limits=SandboxLimits(wall_time_s=60.0, cpu_time_s=1))
    assert result.outcome == Outcome.CPU_LIMIT
    assert result.signal == signal.SIGXCPU


async def test_memory_limit_stops_a_large_allocation(sandbox: Sandbox):
    result = await sandbox.run("block = bytearray(2 * 1024**3)", limits=SandboxLimits(memory_mb=128))
    assert result.outcome == Outcome.MEMORY_LIMIT


FORK_BOMB = """
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        children += 1
except OSError as err:
    print(children, type(err).__name__)
"""


async def test_process_limit_stops_a_fork_bomb_and_nothing_survives_the_run(sandbox: Sandbox):
    result = await sandbox.run(FORK_BOMB, limits=SandboxLimits(max_processes=8))
    assert result.outcome == Outcome.OK
    children, error = result.stdout.split()
    assert int(children) < 8 and error == "BlockingIOError"
    assert processes_of(result.details["uid"]) == []


async def test_output_limit_kills_a_program_that_floods_its_output(sandbox: Sandbox):
    result = await sandbox.run(
        "while True:\n    print('x' * 1000)", limits=SandboxLimits(max_output_bytes=50_000)
    )
    assert result.outcome == Outcome.OUTPUT_LIMIT
    assert len(result.stdout) + len(result.stderr) <= 50_000


async def test_file_size_limit_stops_a_program_filling_the_disk(sandbox: Sandbox):
    source = "open('big', 'wb').write(b'x' * (8 * 1024 * 1024))"
    result = await sandbox.run(source, limits=SandboxLimits(max_file_mb=1))
    assert result.outcome == Outcome.ERROR
    assert "File too large" in result.stderr or "No space left" in result.stderr


async def test_writes_outside_the_folder_are_denied(sandbox: Sandbox, tmp_path: Path):
    targets = [str(tmp_path / "escaped"), str(ROOT / "escaped"), "/root/escaped", "/etc/escaped", "/usr/x"]
    source = f"""
denied = []
for path in {targets!r}:
    try:
        open(path, "w").write("x")
    except OSError:
        denied.append(path)
open("/tmp/escaped-sandbox", "w").write("its /tmp is its own folder")
print(len(denied))
"""
    result = await sandbox.run(source)
    assert result.stdout.strip() == str(len(targets))
    assert not any(Path(target).exists() for target in targets)
    assert not Path("/tmp/escaped-sandbox").exists()


async def test_the_callers_files_and_environment_are_not_readable(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-candidates")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    paths = [str(secret), str(ROOT / "pyproject.toml"), f"/proc/{os.getpid()}/environ", "/root/.bashrc"]
    source = f"""
import os
import signal
read = []
for path in {paths!r}:
    try:
        open(path).read()
        read.append(path)
    except OSError:
        pass
print(read, sorted(os.environ))
"""
    result = await sandbox.run(source)
    read, names = result.stdout.split("] ", 1)
    assert read == "["
    assert eval(names) == sorted(clean_environment("/sandbox"))


async def test_sockets_cannot_reach_the_callers_network(sandbox: Sandbox):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    source = f"""
import socket
for address in [("127.0.0.1", {port}), ("pypi.org", 443)]:
    try:
        socket.create_connection(address, timeout=2)
        print("connected", address)
    except OSError as err:
        print("denied", type(err).__name__)
"""
    result = await sandbox.run(source)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing ever reached the listening socket's backlog
        server.accept()
    server.close()
    assert result.stdout.count("denied") == 2 and "connected" not in result.stdout


async def test_the_program_cannot_signal_the_caller_or_its_supervisor(sandbox: Sandbox):
    source = f"""
import os, signal
for pid in ({os.getpid()}, os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("killed", pid)
    except OSError as err:
        print("denied", type(err).__name__)
"""
    result = await sandbox.run(source)
    assert result.outcome == Outcome.OK
    assert "killed" not in result.stdout


async def test_concurrent_runs_are_independent(sandbox: Sandbox):
    results = await sandbox.run_many([f"print({i} * 2)" for i in range(6)], concurrency=3)
    assert [r.stdout.strip() for r in results] == [str(i * 2) for i in range(6)]
    assert len({r.details["uid"] for r in results}) == 6


@pytest.mark.parametrize(
    ("source", "limits", "expected"),
    [
        ("import time\ntime.sleep(3600)", SandboxLimits(wall_time_s=0.5), Outcome.TIMEOUT),
        ("while True:\n    pass", SandboxLimits(wall_time_s=60.0, cpu_time_s=1), Outcome.CPU_LIMIT),
        ("block = bytearray(2 * 1024**3)", SandboxLimits(memory_mb=128), Outcome.MEMORY_LIMIT),
        ("while True:\n    print('x' * 1000)", SandboxLimits(max_output_bytes=50_000), Outcome.OUTPUT_LIMIT),
    ],
    ids=["wall", "cpu", "memory", "output"],
)
async def test_limits_hold_without_namespaces(source: str, limits: SandboxLimits, expected: Outcome):
    result = await Sandbox(isolation="none").run(source, limits=limits)
    assert (result.isolation, result.outcome) == ("none", expected)


async def test_without_namespaces_a_fork_bomb_is_still_capped_by_its_own_user_id():
    result = await Sandbox(isolation="none").run(FORK_BOMB, limits=SandboxLimits(max_processes=8))
    children, _ = result.stdout.split()
    assert int(children) < 8
    assert processes_of(result.details["uid"]) == []


def test_bad_limits_and_file_names_are_clear_errors():
    with pytest.raises(ConfigError, match="wall_time_s"):
        SandboxLimits(wall_time_s=0)
    with pytest.raises(InvalidRequest, match="relative"):
        Sandbox().run_sync("pass", files={"../escape": "x"})
    with pytest.raises(InvalidRequest, match="isolation"):
        Sandbox(isolation="docker")  # type: ignore[arg-type]
