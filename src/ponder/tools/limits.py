"""The sandbox's typed boundary: the limits a run gets (validated once) and what came back.

`RunResult.render()` is the one text a model sees as the tool's reply; `ponder sandbox` prints the
same text, so a user sees exactly what the model would.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Literal

# The limit that ended a run. "timeout" and "output" are ponder stopping it; "cpu" is the kernel's
# SIGXCPU; the others are the program dying of the error the kernel returned when a limit was hit.
Limit = Literal["timeout", "cpu", "memory", "processes", "open_files", "file_size", "output"]

# How much more than `output_bytes` a stream may print before the run is stopped ("output"): up to
# that, the excess is read and dropped (so a program that prints a bit too much still finishes and
# reports its exit status); past it, reading on only burns the parent's CPU until the timeout.
OUTPUT_STOP_FACTOR = 16


def _check_int(name: str, value: object, least: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(
            f"SandboxLimits.{name} must be an integer >= {least} ({unit}), got {value!r}"
        )


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run. Defaults suit a short computation by a model."""

    timeout_s: float = 10.0  # wall clock; the whole sandbox is killed when it passes
    cpu_s: int | None = None  # CPU seconds per process (RLIMIT_CPU); None: ceil(timeout_s)
    memory_mb: int = 512  # address space per process (RLIMIT_AS), MiB
    processes: int = 32  # processes + threads alive at once inside the sandbox (RLIMIT_NPROC)
    open_files: int = 64  # open file descriptors per process (RLIMIT_NOFILE)
    file_size_mb: int = 16  # largest file it may write (RLIMIT_FSIZE), and its tmpfs's size; MiB
    output_bytes: int = 65536  # bytes kept of stdout and of stderr each (first and last halves)

    def __post_init__(self) -> None:
        t = self.timeout_s
        number = isinstance(t, (int, float)) and not isinstance(t, bool)
        if not number or math.isnan(t) or not 0 < t <= 3600:
            raise ValueError(f"SandboxLimits.timeout_s must be in (0, 3600] seconds, got {t!r}")
        if self.cpu_s is not None:
            _check_int("cpu_s", self.cpu_s, 1, "seconds")
        _check_int("memory_mb", self.memory_mb, 32, "MiB; Python itself needs about 20")
        _check_int("processes", self.processes, 4, "the sandbox's init and Python count")
        _check_int("open_files", self.open_files, 16, "Python opens a few at startup")
        _check_int("file_size_mb", self.file_size_mb, 1, "MiB")
        _check_int("output_bytes", self.output_bytes, 256, "bytes")

    @property
    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else max(1, math.ceil(self.timeout_s))

    def describe(self, limit: Limit) -> str:
        """The limit named with its value, as the reply shows it."""
        stop = self.output_bytes * OUTPUT_STOP_FACTOR
        return {
            "timeout": f"wall-clock timeout ({self.timeout_s:g} s)",
            "cpu": f"CPU time limit ({self.cpu_seconds} s)",
            "memory": f"memory limit ({self.memory_mb} MiB)",
            "processes": f"process limit ({self.processes})",
            "open_files": f"open-file limit ({self.open_files})",
            "file_size": f"file size limit ({self.file_size_mb} MiB)",
            "output": f"output limit (printed over {stop:,} bytes)",
        }[limit]


@dataclass(frozen=True)
class RunResult:
    """What one run printed and how it ended. stdout/stderr already carry the cut marker."""

    stdout: str
    stderr: str
    exit_code: int | None  # 0-255, 128+N when killed by signal N; None when ponder stopped it
    killed_by: Limit | None  # the limit that ended it, when one did
    seconds: float  # wall time, sandbox setup included
    limits: SandboxLimits
    stdout_cut: int = 0  # bytes dropped from the middle of stdout
    stderr_cut: int = 0

    @property
    def stdout_truncated(self) -> bool:
        return self.stdout_cut > 0

    @property
    def stderr_truncated(self) -> bool:
        return self.stderr_cut > 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_by is None

    def status_line(self) -> str:
        secs = f"{self.seconds:.2f} s"
        if self.exit_code is None:  # ponder stopped it
            what = self.limits.describe(self.killed_by) if self.killed_by else "stopped"
            return f"[killed: {what} · {secs}]"
        if self.exit_code > 128:  # how a shell shows a death by signal
            try:
                name = signal.Signals(self.exit_code - 128).name
            except ValueError:
                name = f"signal {self.exit_code - 128}"
            why = f": {self.limits.describe(self.killed_by)}" if self.killed_by else ""
            return f"[killed by {name}{why} · {secs}]"
        why = f": {self.limits.describe(self.killed_by)} reached" if self.killed_by else ""
        return f"[exit status {self.exit_code}{why} · {secs}]"

    def render(self) -> str:
        """The tool's reply as the model sees it: stdout, stderr, how it ended, how long it took."""
        parts = []
        if self.stdout:
            parts.append("[stdout]\n" + self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if not parts:
            parts.append("[no output]")
        parts.append(self.status_line())
        return "\n".join(parts)


# The last lines of a Python traceback say which limit the kernel enforced (errno from the failed
# call); only the interpreter's own exit (status 1) is read this way, so a program printing such a
# line and exiting 0 is not misreported.
_ERROR_MARKS: tuple[tuple[Limit, tuple[str, ...]], ...] = (
    ("memory", ("MemoryError", "[Errno 12] Cannot allocate memory")),
    ("file_size", ("[Errno 27] File too large", "[Errno 28] No space left on device")),
    ("processes", ("[Errno 11] Resource temporarily unavailable", "can't start new thread")),
    ("open_files", ("[Errno 24] Too many open files",)),
)


_PROCESS_MARKS = dict(_ERROR_MARKS)["processes"]


def classify(exit_code: int | None, stderr_tail: str) -> Limit | None:
    """The limit that a run ended on, from its exit status and the end of its stderr."""
    if exit_code == 128 + signal.SIGXCPU:
        return "cpu"
    if exit_code == 128 + signal.SIGXFSZ:
        return "file_size"
    if exit_code != 1:
        return None
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    for line in reversed(lines[-3:]):
        for limit, marks in _ERROR_MARKS:
            if any(mark in line for mark in marks):
                return limit
    # A fork bomb's processes fail together, and their tracebacks interleave on the one stderr
    # they share, so the errno line can sit above the last three (it did in about one run of
    # several on a 2-core CPU): for the process limit, the last 20 lines are read.
    if any(mark in line for line in lines[-20:] for mark in _PROCESS_MARKS):
        return "processes"
    return None
