"""Run untrusted Python (a model's code) isolated by the operating system, not by Python.

The idea is the one behind bubblewrap-based sandboxes (Flatpak, and the code-execution sandboxes of
agent tools): Linux namespaces give the program a world of its own, and rlimits bound what it may
spend. Python-level sandboxes do not hold: smolagents' restricted interpreter was escaped twice
(CVE-2025-5120, CVE-2025-9959), and human-eval's `execution.py` says of its own guards that they are
"NOT a security sandbox". ponder runs model output, so the interpreter itself sits inside the box.

What a run gets (`bwrap` 0.7+; see `_bwrap_argv`):
- every namespace unshared: user, mount, PID, IPC, UTS, network (no network at all, not even the
  host's loopback) and cgroup where the kernel allows; nested user namespaces disabled (bwrap 0.8+);
- a read-only root: /usr, the /bin and /lib links, a few /etc files the dynamic loader and Python
  read, and the interpreter's install; no /home, /root, /var, /run, /sys or host /tmp;
- a fresh tmpfs at /tmp, `file_size_mb` big: the only writable place, the working directory and
  $HOME; it is gone when the run ends;
- /proc of its own PID namespace (it sees only itself), a minimal read-only /dev;
- an environment of PATH, LANG, HOME and TMPDIR only: no API keys, no PONDER_*, no proxies;
- uid 65534 inside; when ponder runs as root, bwrap itself is started as host uid 65534 too,
  because the kernel never enforces RLIMIT_NPROC for host root (even inside a user namespace);
- rlimits on CPU seconds, address space, processes, open files and file size, set by a tiny
  launcher inside the sandbox (not in a preexec for bwrap: there RLIMIT_NPROC would count every
  process of the host user, and bound bwrap itself); --die-with-parent, --new-session (no TIOCSTI
  on our terminal); a wall-clock timeout that kills the process group, and with it the PID
  namespace; stdout and stderr capped, the middle cut with a marker.

The interpreter inside is the base interpreter of the Python running ponder (a venv's base, without
the venv's packages: the standard library and whatever the base install has) when the sandbox's
user can read it; otherwise (root with a Python under /root, as pyenv installs) the system python3
in /usr.

Limits, plainly: there is no seccomp filter, so the kernel's whole syscall surface is reachable and
a kernel bug is an escape; /usr is readable; host-wide facts in /proc (CPU and memory info) are
visible; RLIMIT_AS bounds address space per process, not total memory; CPU time is per process
(the wall-clock timeout bounds the sum); multiprocessing's semaphores need a writable /dev/shm,
which the sandbox does not have.

Where bwrap is missing or cannot create namespaces, `run_python` raises `SandboxUnavailable` saying
how to fix it. It never runs code unsandboxed unless asked to by name: `unsafe_no_sandbox=True` or
PONDER_UNSAFE_NO_SANDBOX=1, which warns on stderr.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from ponder.errors import UserError
from ponder.tools.limits import OUTPUT_STOP_FACTOR, RunResult, SandboxLimits, classify
from ponder.tools.process import Outcome, run_capped

SANDBOX_UID = 65534  # "nobody", inside the sandbox always, and on the host when ponder is root
UNSAFE_ENV = "PONDER_UNSAFE_NO_SANDBOX"
PROGRAM = "/tmp/main.py"  # where the source lies inside the sandbox (tracebacks name it)
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
}
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives")

# Runs inside the sandbox as `python -I -S -c _LAUNCHER ready cpu as nproc nofile fsize program`:
# closes every inherited descriptor, sets the rlimits (never above an existing hard limit, which an
# unprivileged process cannot raise), says "ready" on its pipe, and execs the program with -u (so
# what it printed before a timeout is not lost in a buffer), -E, -s.
_LAUNCHER = """\
import os, resource as r, sys
ready, cpu, mem, nproc, nofile, fsize = (int(a) for a in sys.argv[1:7])
for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
    if fd > 2 and fd != ready:
        try:
            os.close(fd)
        except OSError:
            pass
def cap(res, soft, hard):
    top = r.getrlimit(res)[1]
    if top != r.RLIM_INFINITY:
        soft, hard = min(soft, top), min(hard, top)
    r.setrlimit(res, (soft, hard))
cap(r.RLIMIT_CORE, 0, 0)
cap(r.RLIMIT_CPU, cpu, cpu + 1)
cap(r.RLIMIT_AS, mem, mem)
if nproc:
    cap(r.RLIMIT_NPROC, nproc, nproc)
cap(r.RLIMIT_NOFILE, nofile, nofile)
cap(r.RLIMIT_FSIZE, fsize, fsize)
os.write(ready, b"1")
os.close(ready)
os.execv(sys.executable, [sys.executable, "-u", "-E", "-s", sys.argv[7]])
"""

_USERNS_HINT = (
    "allow unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1; on Ubuntu "
    "23.10+ sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; in a container, a seccomp/"
    "AppArmor profile that permits them)"
)


# What bwrap says when the kernel, AppArmor or a container's seccomp profile refuses namespaces.
_NO_USERNS = ("namespace", "uid map", "Operation not permitted", "Permission denied")


class SandboxUnavailable(UserError):
    """bwrap is missing, too old, or cannot create namespaces here. The message says what to do."""


class SandboxError(RuntimeError):
    """A sandbox that worked before failed to start a run: the host or ponder is broken, not the
    program (its own failures are a RunResult, never an exception)."""


@dataclass(frozen=True)
class _Host:
    bwrap: str
    python: str  # the interpreter, at the same path inside as outside
    binds: tuple[str, ...]  # read-only binds besides /usr: /etc files, the interpreter's install
    drop_to: int | None  # host uid/gid to start bwrap as (ponder runs as root)
    disable_userns: bool


def run_python(
    source: str,
    limits: SandboxLimits = SandboxLimits(),
    stdin: str = "",
    *,
    unsafe_no_sandbox: bool = False,
) -> RunResult:
    """Run `source` as a Python program in the sandbox; its failures come back in the result."""
    if unsafe_no_sandbox or os.environ.get(UNSAFE_ENV) == "1":
        return _run_unsandboxed(source, limits, stdin)
    return _run_in(sandbox_host(), source, limits, stdin)


async def run_python_async(
    source: str,
    limits: SandboxLimits = SandboxLimits(),
    stdin: str = "",
    *,
    unsafe_no_sandbox: bool = False,
) -> RunResult:
    """`run_python` in a worker thread. Cancelling the awaiting task does not stop the run early;
    the run still ends by `limits.timeout_s`."""
    return await asyncio.to_thread(
        run_python, source, limits, stdin, unsafe_no_sandbox=unsafe_no_sandbox
    )


def check_available() -> None:
    """Raise SandboxUnavailable (one line, saying what to install or enable) unless `run_python`
    can run code here: the sandbox works, or the named opt-out is on. Callers that will run code
    later (a strategy, a grader) call it first, to fail before any model work."""
    if os.environ.get(UNSAFE_ENV) != "1":
        sandbox_host()


_probed: _Host | SandboxUnavailable | None = None
_probe_lock = threading.Lock()


def sandbox_host() -> _Host:
    """Find bwrap and an interpreter and run one trivial program; once per process, cached
    (a refusal too, so a bench of thousands of calls fails fast and says why once)."""
    global _probed
    with _probe_lock:
        if _probed is None:
            try:
                _probed = _probe()
            except SandboxUnavailable as e:
                _probed = e
    if isinstance(_probed, SandboxUnavailable):
        raise _probed
    return _probed


def _probe() -> _Host:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable("the Python sandbox needs Linux with bubblewrap (bwrap)")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "the Python sandbox needs bubblewrap, which is not installed: apt-get install"
            " bubblewrap (dnf/pacman: bubblewrap)"
        )
    try:
        usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SandboxUnavailable(f"cannot run {bwrap}: {e}") from None
    if "--size" not in usage:
        raise SandboxUnavailable(
            f"{bwrap} is too old: the sandbox needs bubblewrap 0.7 or later (--size, to bound its"
            " tmpfs); install a newer bubblewrap"
        )
    drop_to = SANDBOX_UID if os.geteuid() == 0 else None
    picked = _pick_python(drop_to)
    if picked is None:
        raise SandboxUnavailable(
            f"no Python interpreter the sandbox's user (uid {SANDBOX_UID}) can read: install"
            " python3 under /usr, or run ponder as a non-root user"
        )
    python, installs = picked
    etc = [f"/etc/{name}" for name in _ETC] + sorted(glob.glob("/etc/python3*"))
    binds = tuple(p for p in etc if os.path.exists(p)) + installs
    host = _Host(bwrap, python, binds, drop_to, "--disable-userns" in usage)
    try:
        result = _run_in(host, "print('ok')", SandboxLimits(timeout_s=60), "")
    except OSError as e:  # bwrap itself would not start (as uid 65534 when ponder is root)
        raise SandboxUnavailable(f"cannot start {bwrap}: {e}") from None
    except SandboxError as e:
        said = str(e).strip().splitlines()[-1]
        if any(w in said for w in _NO_USERNS):
            raise SandboxUnavailable(
                f"bwrap cannot create a sandbox here ({said}): {_USERNS_HINT}"
            ) from None
        raise SandboxUnavailable(f"bwrap cannot create a sandbox here: {said}") from None
    if not result.ok or result.stdout.strip() != "ok":
        detail = (result.stderr.strip().splitlines() or [result.status_line()])[-1]
        raise SandboxUnavailable(f"the sandbox starts but Python fails in it: {detail}")
    return host


def _pick_python(drop_to: int | None) -> tuple[str, tuple[str, ...]] | None:
    """The interpreter to run inside, and the install directories to bind for it (not /usr)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    candidates = [(base, (sys.base_prefix, sys.base_exec_prefix)), ("/usr/bin/python3", ()),
                  ("/usr/local/bin/python3", ())]
    for exe, prefixes in candidates:
        exe = os.path.realpath(exe)
        if not os.path.isfile(exe) or not os.access(exe, os.X_OK):
            continue
        installs = {os.path.realpath(p) for p in prefixes if p}
        if not any(exe.startswith(p + "/") for p in installs):
            installs = {os.path.dirname(os.path.dirname(exe))}  # PREFIX/bin/python3.X
        installs = {p for p in installs if p != "/usr" and not p.startswith("/usr/")}
        if drop_to is not None and not all(_others_can_read(p) for p in (exe, *installs)):
            continue  # e.g. pyenv under /root (0700): uid 65534 cannot even reach it
        return exe, tuple(sorted(installs))
    return None


def _others_can_read(path: str) -> bool:
    """Whether a user with no ownership or group of anything on the path can read it."""
    try:
        parts = path.rstrip("/").split("/")
        for i in range(2, len(parts)):
            if not os.stat("/".join(parts[:i])).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(path).st_mode
    except OSError:
        return False
    need = stat.S_IROTH | stat.S_IXOTH
    return mode & need == need


def _bwrap_argv(host: _Host, limits: SandboxLimits, fds: tuple[int, int, int]) -> list[str]:
    code_fd, ready_fd, info_fd = fds
    argv = [host.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
            "--info-fd", str(info_fd)]
    if host.disable_userns:
        argv.append("--disable-userns")
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):  # merged /usr: links
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for path in host.binds:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.file_size_mb << 20), "--tmpfs", "/tmp",
             "--file", str(code_fd), PROGRAM,
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    return argv + ["--", host.python, *_launcher_args(limits, ready_fd, PROGRAM, nproc=True)]


def _launcher_args(limits: SandboxLimits, ready_fd: int, program: str, *, nproc: bool) -> list[str]:
    numbers = (ready_fd, limits.cpu_seconds, limits.memory_mb << 20,
               limits.processes if nproc else 0, limits.open_files, limits.file_size_mb << 20)
    return ["-I", "-S", "-c", _LAUNCHER, *map(str, numbers), program]


def _run_in(host: _Host, source: str, limits: SandboxLimits, stdin: str) -> RunResult:
    code = source.encode("utf-8", "replace")
    if len(code) > (limits.file_size_mb << 20) - 65536:  # bwrap could not even write it
        mib = limits.file_size_mb
        said = f"ponder: the program is {len(code):,} bytes; the sandbox's tmpfs holds {mib} MiB"
        return RunResult("", said, None, "file_size", 0.0, limits)
    code_fd = os.memfd_create("main.py")  # bwrap copies it into the tmpfs (--file)
    ready_r, ready_w = os.pipe()  # the launcher's "limits set, exec'ing the program"
    info_r, info_w = os.pipe()  # bwrap's JSON with the host pid of the sandbox's init
    fds = (code_fd, ready_w, info_w)
    try:
        os.write(code_fd, code)
        os.lseek(code_fd, 0, os.SEEK_SET)
        outcome = _spawn(_bwrap_argv(host, limits, fds), limits, stdin,
                         env={}, cwd="/", pass_fds=fds, user=host.drop_to)
    except BaseException:
        os.close(ready_r)
        os.close(info_r)
        raise
    finally:
        for fd in fds:
            os.close(fd)
    _await_namespace_end(info_r)
    if not _was_ready(ready_r) and outcome.stopped is None:
        said = outcome.stderr.text().strip() or f"exit status {outcome.exit_code}"
        raise SandboxError(f"the sandbox did not start the program: {said}")
    return _result(outcome, limits)


def _await_namespace_end(info_r: int, limit_s: float = 5.0) -> None:
    """Wait until nothing of the run is left. bwrap exits as soon as its init (PID 1 inside)
    reports the program's status, while that init may still be killing what is left in the PID
    namespace; the init's own exit comes only after the last of those is gone (the kernel's
    zap_pid_ns_processes), so a pidfd on it says when the namespace is empty."""
    try:
        os.set_blocking(info_r, False)
        info = os.read(info_r, 4096)
    except BlockingIOError:
        info = b""
    finally:
        os.close(info_r)
    try:
        pidfd = os.pidfd_open(int(json.loads(info)["child-pid"]))
    except (ValueError, KeyError, TypeError, OSError, AttributeError):
        return  # no report (bwrap failed early), already reaped, or a kernel without pidfds
    try:
        select.select([pidfd], [], [], limit_s)
    finally:
        os.close(pidfd)


_warned = False


def _run_unsandboxed(source: str, limits: SandboxLimits, stdin: str) -> RunResult:
    """The named opt-out: the same launcher and limits (no process limit: it would count all of the
    user's processes), in a temporary directory, with nothing between the program and the host."""
    global _warned
    if not _warned:
        _warned = True
        print(
            f"ponder: WARNING: running model-written code WITHOUT a sandbox ({UNSAFE_ENV}=1 or"
            " unsafe_no_sandbox=True): it can read, write and reach whatever you can",
            file=sys.stderr,
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="ponder-unsafe-") as tmp:
        program = os.path.join(tmp, "main.py")
        with open(program, "w", encoding="utf-8", errors="replace") as f:
            f.write(source)
        ready_r, ready_w = os.pipe()
        try:
            argv = [sys.executable, *_launcher_args(limits, ready_w, program, nproc=False)]
            env = dict(SANDBOX_ENV, HOME=tmp, TMPDIR=tmp)
            outcome = _spawn(argv, limits, stdin, env=env, cwd=tmp, pass_fds=(ready_w,), user=None)
        finally:
            os.close(ready_w)
            _was_ready(ready_r)  # closes it
    return _result(outcome, limits)


def _spawn(argv, limits: SandboxLimits, stdin: str, **how) -> Outcome:
    return run_capped(argv, stdin=stdin.encode("utf-8", "replace"), timeout_s=limits.timeout_s,
                      keep_bytes=limits.output_bytes,
                      stop_bytes=limits.output_bytes * OUTPUT_STOP_FACTOR, **how)


def _was_ready(ready_r: int) -> bool:
    try:
        os.set_blocking(ready_r, False)  # every writer is gone by now; never wait here
        return os.read(ready_r, 1) == b"1"
    except BlockingIOError:
        return False
    finally:
        os.close(ready_r)


def _result(outcome: Outcome, limits: SandboxLimits) -> RunResult:
    killed_by = outcome.stopped or classify(outcome.exit_code, outcome.stderr.last(2048))
    return RunResult(
        stdout=outcome.stdout.text(),
        stderr=outcome.stderr.text(),
        exit_code=outcome.exit_code,
        killed_by=killed_by,
        seconds=round(outcome.seconds, 3),
        limits=limits,
        stdout_cut=outcome.stdout.cut,
        stderr_cut=outcome.stderr.cut,
    )
