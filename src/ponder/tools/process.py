"""Run one child with a wall-clock deadline and capped output; kill its whole process group.

Plain mechanism, no policy: `sandbox.py` decides what the child is (bwrap around Python) and what
limits it gets. Both pipes are read as the child writes, so a program printing gigabytes costs the
parent `keep_bytes` of memory, not gigabytes.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Literal

_CHUNK = 65536


class Capture:
    """Keeps the first and the last half of `keep` bytes of a stream and counts what it drops."""

    def __init__(self, keep: int):
        self.head_cap = keep - keep // 2
        self.tail_cap = keep // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_cap + _CHUNK:  # trim in batches, not on every read
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - min(len(self.tail), self.tail_cap)

    def last(self, n: int) -> str:
        """The true end of the stream (where a traceback's last line is), decoded."""
        return bytes((self.head + self.tail)[-n:]).decode("utf-8", "replace")

    def text(self) -> str:
        tail = bytes(self.tail[len(self.tail) - min(len(self.tail), self.tail_cap) :])
        head = bytes(self.head).decode("utf-8", "replace")
        if not self.cut:
            return head + tail.decode("utf-8", "replace")
        marker = f"\n[... {self.cut:,} bytes cut (kept the first and last {self.tail_cap:,}) ...]\n"
        return head + marker + tail.decode("utf-8", "replace")


@dataclass
class Outcome:
    exit_code: int | None  # 0-255, 128+N for signal N; None when stopped here
    stopped: Literal["timeout", "output"] | None
    stdout: Capture
    stderr: Capture
    seconds: float


def run_capped(
    argv: list[str],
    *,
    stdin: bytes,
    timeout_s: float,
    keep_bytes: int,
    stop_bytes: int,
    env: dict[str, str],
    cwd: str,
    pass_fds: tuple[int, ...] = (),
    user: int | None = None,
) -> Outcome:
    """Run `argv` in a new session (its own process group), as host uid/gid `user` if given."""
    out, err = Capture(keep_bytes), Capture(keep_bytes)
    # subprocess's own user=/group= switch uid in the child without a preexec_fn, which is not
    # safe in a threaded parent (run_python_async calls this from worker threads).
    ids = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        pass_fds=pass_fds,
        start_new_session=True,
        **ids,
    )
    deadline = start + timeout_s
    stopped = None
    try:
        stopped = _pump(proc, stdin, deadline, out, err, stop_bytes)
        if stopped is None:  # both pipes closed; the child may still run (it closed them itself)
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stopped = "timeout"
    finally:
        if proc.returncode is None:  # stopped, or an exception (Ctrl-C) here: leave nothing behind
            _kill_group(proc)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    seconds = time.monotonic() - start
    rc = proc.returncode
    exit_code = None if stopped else (128 - rc if rc < 0 else rc)
    return Outcome(exit_code, stopped, out, err, seconds)


def _pump(proc, stdin: bytes, deadline: float, out: Capture, err: Capture, stop_bytes: int):
    """Feed stdin and drain stdout/stderr until both close, the deadline, or too much output."""
    pending = memoryview(stdin)
    with selectors.DefaultSelector() as sel:
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()  # the program reads EOF at once
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        open_outputs = 2
        while open_outputs:  # stdin left unread does not keep us here
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            for key, _ in sel.select(remaining):
                if key.fileobj is proc.stdin:
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it stopped reading: fine, drop the rest
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                data = os.read(key.fd, _CHUNK)
                if not data:
                    sel.unregister(key.fileobj)
                    open_outputs -= 1
                    continue
                key.data.add(data)
                if key.data.total > stop_bytes:
                    return "output"
    return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
