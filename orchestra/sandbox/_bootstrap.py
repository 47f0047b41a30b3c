"""The sandbox's child side: builds the jail, then runs the untrusted program inside it.

Run by `Sandbox` as `python -S -s -B -P _bootstrap.py HOSTDIR STATUS_FD` with a clean
environment; it imports nothing but the standard library (the jail has no orchestra in it).

With `isolate` (root): `unshare` new mount, network, PID, IPC and UTS namespaces, fork the
namespace's PID 1 (a reaper), build a new root from read-only binds of the interpreter and
system folders plus a size-limited tmpfs `/sandbox`, then fork the candidate, which chroots
into it, sets its rlimits, drops to a user id of its own and runs the program. When PID 1
exits, the kernel kills every process left in the namespace. Without `isolate`, the candidate
only gets the rlimits and the temporary folder.

The reaper reports how the candidate ended (exit code or signal, CPU time) as one Python dict
literal on STATUS_FD, which the candidate never holds. (No json: importing it costs more than
the rest of the start-up.)
"""

# os.path rather than pathlib: importing pathlib would add to every run's start-up time.
# ruff: noqa: PTH102, PTH103, PTH110, PTH112, PTH114, PTH115, PTH118, PTH120, PTH211

import _signal as signal  # the C module: `signal` would import enum, a few ms per run
import builtins
import ctypes
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 38, 36
EXIT_MEMORY, EXIT_SETUP = 86, 87
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")

_libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _bytes(text):
    return None if text is None else text.encode()


def mount(source, target, fstype, flags, data=None):
    _call(_libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)), f"mount {target}")


def bind_read_only(path, root):
    """`path` at the same place under `root`, read-only and without set-uid (symlinks copied)."""
    target = root + path
    if os.path.islink(path):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    elif os.path.exists(path):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").close()
    else:
        return
    mount(path, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(spec, hostdir):
    """The jail's file tree: nothing of the host but read-only system folders and the interpreter."""
    root = os.path.join(hostdir, "root")
    uid = spec["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in spec["read_only_paths"]:
        bind_read_only(path, root)
    os.makedirs(root + "/dev", exist_ok=True)
    for device in DEVICES:
        open(root + device, "w").close()
        mount(device, root + device, None, MS_BIND)
    os.mkdir(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(root + "/sandbox")
    size = f"size={spec['limits']['max_file_mb']}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}"
    mount("tmpfs", root + "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV, size)
    os.symlink("/sandbox", root + "/tmp")
    write_files(spec["files"], root + "/sandbox", uid)
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return root


def write_files(files, folder, uid):
    for name, text in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        if uid is not None:
            os.chown(path, uid, uid)


def set_limits(limits):
    cpu = int(limits["cpu_time_s"])
    memory = int(limits["memory_mb"]) * 1024 * 1024
    file_size = int(limits["max_file_mb"]) * 1024 * 1024
    for kind, soft, hard in (
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_NPROC, limits["max_processes"], limits["max_processes"]),
        (resource.RLIMIT_FSIZE, file_size, file_size),
        (resource.RLIMIT_NOFILE, limits["max_open_files"], limits["max_open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        resource.setrlimit(kind, (soft, hard))


def run_program(source):
    """Run the untrusted program in this process, as `python main.py` would; never returns."""
    sys.argv = ["main.py"]
    namespace = {"__name__": "__main__", "__file__": "main.py", "__builtins__": builtins}
    code = 0
    try:
        exec(compile(source, "main.py", "exec"), namespace)
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code & 0xFF
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except MemoryError:
        code = EXIT_MEMORY
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 1
    os._exit(code)


def candidate(spec, source, status_fd, root, workdir):
    """In the forked candidate: enter the jail, drop privileges, run the program."""
    os.close(status_fd)
    if root is not None:
        os.chroot(root)
    os.chdir(workdir)
    set_limits(spec["limits"])
    uid = spec["uid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _call(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
    run_program(source)


def reap(spec, source, status_fd, root, workdir, isolation):
    """Fork the candidate, wait for it, report how it ended on `status_fd`.

    SIGTERM (the caller's "stop now") kills the candidate. Without namespaces, as root, everything
    the candidate left running is killed through its user id and reaped here (a subreaper), so
    nothing outlives the run."""
    if isolation == "none":
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid = os.fork()
    if pid == 0:
        try:
            candidate(spec, source, status_fd, root, workdir)
        except BaseException:
            import traceback

            traceback.print_exc()
        os._exit(EXIT_SETUP)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    _, status, usage = os.wait4(pid, 0)
    if isolation == "none" and spec["uid"] is not None:
        kill_user(spec["uid"])
    report = {
        "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
        "isolation": isolation,
        "uid": spec["uid"],
    }
    os.write(status_fd, repr(report).encode())


def kill_user(uid):
    """Kill every process of the run's own user id (kill(-1) as that user), then reap them all."""
    helper = os.fork()
    if helper == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        os.kill(-1, signal.SIGKILL)
        os._exit(0)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def setup_failed(status_fd, message):
    os.write(status_fd, repr({"setup_error": message}).encode())
    os._exit(EXIT_SETUP)


def main():
    hostdir, status_fd = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(hostdir, "spec.py"), encoding="utf-8") as handle:
        spec = eval(handle.read(), {"__builtins__": {}})  # a literal written by the caller
    source = spec.pop("source")
    if not spec["isolate"]:
        workdir = os.path.join(hostdir, "work")
        write_files(spec["files"], workdir, None)
        reap(spec, source, status_fd, None, workdir, "none")
        os._exit(0)
    try:
        _call(
            _libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare"
        )
    except OSError as err:
        setup_failed(status_fd, str(err))
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace: when it exits, everything inside is killed
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        try:
            root = build_root(spec, hostdir)
        except OSError as err:
            setup_failed(status_fd, str(err))
        reap(spec, source, status_fd, root, "/sandbox", "namespaces")
        os._exit(0)
    os.close(status_fd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else EXIT_SETUP)


if __name__ == "__main__":
    main()
