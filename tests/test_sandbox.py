"""The sandbox's escape suite, against the real bubblewrap: every hostile program ends with the
limit named in the reply, the host unchanged, and the next call working. Plus the typed boundary,
the refusal when bwrap cannot run, the named opt-out, and `ponder sandbox`.

Limits are small (2-3 s, 256 MiB) so the file runs in seconds on two shared cores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import socket
import sys
import threading
import time

import pytest

from ponder.tools import sandbox
from ponder.tools.sandbox import (
    RunResult,
    SandboxLimits,
    SandboxUnavailable,
    run_python,
    run_python_async,
)

try:  # one probe for the module: a host without bwrap or user namespaces skips, saying why
    HOST = sandbox.sandbox_host()
    WHY_NOT = ""
except SandboxUnavailable as e:
    HOST, WHY_NOT = None, str(e)
needs_bwrap = pytest.mark.skipif(HOST is None, reason=f"the sandbox cannot run here: {WHY_NOT}")

# A wall-clock limit well above what these programs need on a loaded CI machine (the escape scan
# takes 0.7 s idle and over 3 s under load); tests about the timeout set their own.
SMALL = SandboxLimits(timeout_s=30, memory_mb=256, processes=16, file_size_mb=8)
TOKEN = "ponder-secret-3f9a1c"  # programs get it hex-encoded, so their own source never contains it


def run(source: str, stdin: str = "", **changes) -> RunResult:
    return run_python(source, dataclasses.replace(SMALL, **changes), stdin)


def live_descendants() -> list[int]:
    """Our descendant processes that still run (zombies excluded)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if state != "Z":
                children.setdefault(int(ppid), []).append(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sandbox_uid_processes() -> list[int]:
    """Live processes of the host uid the sandbox runs as, when ponder is root (else: none)."""
    if os.geteuid() != 0:
        return []
    pids = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/status") as f:
                status = f.read()
        except OSError:
            continue
        uid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")), None)
        state = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("State:")), "")
        if uid == str(sandbox.SANDBOX_UID) and state != "Z":
            pids.append(int(name))
    return pids


def assert_host_clean_and_next_call_works() -> None:
    # A run waits up to 5 s for its PID namespace to empty (sandbox._await_namespace_end); on a
    # machine loaded enough, the kernel takes longer to kill a fork bomb's processes. Nothing may
    # be left once it has had the time.
    deadline = time.monotonic() + 30
    while (live_descendants() or sandbox_uid_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_descendants() == []
    assert sandbox_uid_processes() == []
    assert run("print(6 * 7)").stdout == "42\n"


# --- the typed boundary ------------------------------------------------------------------------


def test_limits_are_validated_once_with_errors_that_say_what_to_change():
    assert SandboxLimits().cpu_seconds == 10 and SandboxLimits(timeout_s=2.5).cpu_seconds == 3
    for bad, said in [
        (dict(timeout_s=0), "timeout_s must be in (0, 3600]"),
        (dict(timeout_s=float("nan")), "timeout_s"),
        (dict(memory_mb=8), "memory_mb must be an integer >= 32"),
        (dict(processes=True), "processes must be an integer"),
        (dict(open_files=2.5), "open_files must be an integer"),
        (dict(output_bytes=10), "output_bytes must be an integer >= 256"),
        (dict(cpu_s=0), "cpu_s must be an integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=said.replace("(", r"\(").replace("]", r"\]")):
            SandboxLimits(**bad)


def test_reply_names_how_the_run_ended():
    limits = SandboxLimits(timeout_s=2)
    ok = RunResult("hi\n", "", 0, None, 0.04, limits)
    assert ok.ok and ok.render() == "[stdout]\nhi\n[exit status 0 · 0.04 s]"
    timeout = RunResult("", "", None, "timeout", 2.0, limits)
    assert timeout.render() == "[no output]\n[killed: wall-clock timeout (2 s) · 2.00 s]"
    cpu = RunResult("", "", 152, "cpu", 1.0, limits)
    assert "[killed by SIGXCPU: CPU time limit (2 s)" in cpu.render() and not cpu.ok


def test_missing_bwrap_refuses_in_one_line_and_never_runs_unsandboxed(monkeypatch):
    monkeypatch.setattr(sandbox, "_probed", None)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(SandboxUnavailable) as e:
        run_python("print('escaped')")
    assert "apt-get install bubblewrap" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SandboxUnavailable):  # cached: refuses again without probing
        run_python("print('escaped')")


def test_no_namespaces_says_how_to_enable_them(monkeypatch):
    def fails(*args, **kwargs):
        raise sandbox.SandboxError("bwrap: No permissions to creating new namespace")

    monkeypatch.setattr(sandbox, "_probed", None)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/bin/true")
    help_text = type("Completed", (), {"stdout": "--size --disable-userns"})
    monkeypatch.setattr(sandbox.subprocess, "run", lambda *a, **k: help_text)
    monkeypatch.setattr(sandbox, "_run_in", fails)
    with pytest.raises(SandboxUnavailable) as e:
        sandbox.sandbox_host()
    assert "kernel.unprivileged_userns_clone=1" in str(e.value)
    assert "apparmor_restrict_unprivileged_userns" in str(e.value) and "\n" not in str(e.value)


def test_the_opt_out_is_explicit_and_warns(monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "_probed", SandboxUnavailable("no bwrap in this test"))
    monkeypatch.setattr(sandbox, "_warned", False)
    with pytest.raises(SandboxUnavailable):
        run_python("print(1)")
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    monkeypatch.setenv("PONDER_SECRET_TEST", TOKEN)
    result = run_python("import os; print(sorted(os.environ))", SMALL)
    assert result.ok and "PONDER_SECRET_TEST" not in result.stdout  # still a cleared environment
    assert "WARNING: running model-written code WITHOUT a sandbox" in capsys.readouterr().err
    monkeypatch.delenv(sandbox.UNSAFE_ENV)
    assert run_python("print(2)", SMALL, unsafe_no_sandbox=True).stdout == "2\n"


# --- ordinary programs ---------------------------------------------------------------------------


@needs_bwrap
def test_a_program_runs_with_stdin_and_reports_its_exit_status():
    result = run("import sys\nname = input()\nprint('hello', name)\nsys.exit(3)", stdin="ada\n")
    assert result.stdout == "hello ada\n" and result.exit_code == 3 and result.killed_by is None
    assert result.render().endswith("[exit status 3 · %.2f s]" % result.seconds)
    assert run("print(sum(range(10)))").ok


@needs_bwrap
def test_invalid_python_is_the_interpreters_error_not_ours():
    result = run("def f(:\n    pass\n")
    assert result.exit_code == 1 and result.killed_by is None and not result.ok
    assert "SyntaxError" in result.stderr and 'File "/tmp/main.py", line 1' in result.stderr


@needs_bwrap
def test_async_runs_go_side_by_side():
    async def three():
        return await asyncio.gather(*(run_python_async(f"print({i})", SMALL) for i in range(3)))

    assert [r.stdout for r in asyncio.run(three())] == ["0\n", "1\n", "2\n"]


# --- limits --------------------------------------------------------------------------------------


@needs_bwrap
def test_a_program_that_sleeps_forever_is_killed_by_the_timeout_and_keeps_what_it_printed():
    start = time.monotonic()
    result = run("import time\nprint('before')\ntime.sleep(60)", timeout_s=1.5)
    assert result.killed_by == "timeout" and result.exit_code is None
    assert result.stdout == "before\n" and time.monotonic() - start < 5
    assert "[killed: wall-clock timeout (1.5 s)" in result.render()
    assert_host_clean_and_next_call_works()


@needs_bwrap
def test_an_infinite_loop_is_killed_by_the_cpu_limit():
    # CPU seconds count the same on a busy machine; a wall-clock limit near them would win there
    result = run("while True:\n    pass", timeout_s=60, cpu_s=1)
    assert result.killed_by == "cpu" and "CPU time limit (1 s)" in result.render()


@needs_bwrap
def test_a_fork_bomb_hits_the_process_limit_and_the_host_is_fine():
    result = run("import os\nwhile True:\n    os.fork()\n")
    assert result.killed_by == "processes", result.render()
    assert "process limit (16) reached" in result.render()
    assert_host_clean_and_next_call_works()


# The end of a real fork bomb's stderr (a CI failure): its processes' tracebacks interleave, and
# the last three lines hold no errno.
INTERLEAVED = """Traceback (most recent call last):
  File "/tmp/main.py", line 3, in <module>
    os.fork()
BlockingIOError: [Errno 11] Resource temporarily unavailable
    Traceback (most recent call last):
  File "/tmp/main.py", line 3, in <module>
    os.fork()
BlockingIOError: [Errno 11] Resource temporarily unavailable
os.fork()
BlockingIOErrorTraceback (most recent call last):
  File "/tmp/main.py", line 3, in <module>
"""


def test_the_process_limit_is_read_from_interleaved_tracebacks():
    from ponder.tools.limits import classify

    assert classify(1, INTERLEAVED) == "processes"
    assert classify(0, INTERLEAVED) is None  # only the interpreter's own failure is read
    # other limits are still read from the last lines only
    memory = "MemoryError\n" + "\n".join(f"line {i}" for i in range(5))
    assert classify(1, memory) is None and classify(1, "x\nMemoryError") == "memory"


@needs_bwrap
def test_a_fork_bomb_that_survives_errors_is_contained_and_others_still_run():
    bomb = (
        "import os, time\nwhile True:\n    try:\n        os.fork()\n"
        "    except OSError:\n        time.sleep(0.01)\n"
    )
    box: list[RunResult] = []
    thread = threading.Thread(target=lambda: box.append(run(bomb, timeout_s=2.5)))
    thread.start()
    time.sleep(0.8)  # the bomb is at its process limit now; the count is per sandbox, not per uid
    assert run("print('still here')").stdout == "still here\n"
    thread.join()
    assert box[0].killed_by == "timeout"
    assert_host_clean_and_next_call_works()


@needs_bwrap
def test_allocating_without_end_hits_the_memory_limit():
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")
    assert result.killed_by == "memory" and "MemoryError" in result.stderr
    assert "memory limit (256 MiB) reached" in result.render()
    assert run("x = 'x' * 10**12").killed_by == "memory"


@needs_bwrap
def test_writing_gigabytes_hits_the_file_size_limit_or_a_full_tmpfs():
    one_file = (
        "mb = b'x' * (1 << 20)\nwith open('big', 'wb') as f:\n"
        "    for _ in range(4096):\n        f.write(mb)\n"
    )
    result = run(one_file)
    assert result.killed_by == "file_size", result.render()
    assert "file size limit (8 MiB) reached" in result.render()
    many_files = (
        "mb = b'x' * (1 << 20)\nfor i in range(4096):\n"
        "    with open(f'f{i}', 'wb') as f:\n        f.write(mb)\n"
    )
    result = run(many_files)
    assert result.killed_by == "file_size" and "No space left on device" in result.stderr


@needs_bwrap
def test_opening_files_without_end_hits_the_open_file_limit():
    result = run("files = [open('/dev/null') for _ in range(10_000)]", open_files=32)
    assert result.killed_by == "open_files" and "open-file limit (32) reached" in result.render()


@needs_bwrap
def test_a_program_bigger_than_the_tmpfs_is_refused_as_a_result_not_an_exception():
    result = run("x = 1\n" * (2 << 20), file_size_mb=8)  # 12 MiB of source
    assert result.killed_by == "file_size" and "the sandbox's tmpfs holds 8 MiB" in result.stderr


@needs_bwrap
def test_printing_without_end_is_stopped_and_the_parent_keeps_only_the_cap():
    forever = "import sys\nmb = 'x' * (1 << 20)\nwhile True:\n    sys.stdout.write(mb)"
    result = run(forever, output_bytes=4096)
    assert result.killed_by == "output" and result.stdout_truncated
    assert len(result.stdout) < 4096 + 200 and "bytes cut" in result.stdout
    assert "[killed: output limit" in result.render()


@needs_bwrap
def test_printing_a_lot_streams_through_the_parent_without_buffering_it():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    program = "import sys\nmb = 'y' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(mb)\n"
    result = run(program, output_bytes=4 << 20, timeout_s=10)  # 100 MiB > 16 x 4 MiB: stopped
    assert result.killed_by == "output"
    result = run(program, output_bytes=8 << 20, timeout_s=10)  # stops only past 128 MiB: all read
    assert result.ok and result.stdout_cut == (100 << 20) - (8 << 20)
    assert f"[... {result.stdout_cut:,} bytes cut" in result.stdout
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # < 64 MiB


# --- escapes -------------------------------------------------------------------------------------


@needs_bwrap
def test_secrets_outside_the_sandbox_cannot_be_read(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text(TOKEN)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(TOKEN)
    monkeypatch.setenv("HOME", str(home))
    program = f"""
import os
token = bytes.fromhex({TOKEN.encode().hex()!r}).decode()
paths = [{str(secret)!r}, {str(home / ".ssh" / "id_rsa")!r}, os.path.expanduser("~/.ssh/id_rsa"),
         "/etc/shadow", "/root/.ssh/id_rsa", "/proc/1/root{secret}", "/proc/1/cwd/secret.txt"]
for p in paths:
    try:
        print("READ", p, open(p).read())
    except OSError as e:
        print("blocked", type(e).__name__)
print("system", os.system("cat /etc/shadow {secret} 2>/dev/null"))
hits = []
skip = {"/proc", "/dev", "/usr", "/proc/1/root/proc", "/proc/1/root/dev", "/proc/1/root/usr"}
for top in ("/", "/proc/1/root"):
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
        for f in files:
            try:
                with open(os.path.join(d, f), errors="ignore") as fh:
                    if token in fh.read(1 << 20):
                        hits.append(os.path.join(d, f))
            except OSError:
                pass
print("hits", hits)
"""
    result = run(program)
    assert result.ok, result.render()
    assert TOKEN not in result.stdout and "READ" not in result.stdout
    assert result.stdout.count("blocked") == 7 and "hits []" in result.stdout
    assert "system 0" not in result.stdout


@needs_bwrap
def test_the_parents_environment_is_invisible_even_through_proc(monkeypatch):
    monkeypatch.setenv("PONDER_SECRET_TEST", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", TOKEN)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{TOKEN}:8080")
    program = f"""
import os
token = bytes.fromhex({TOKEN.encode().hex()!r}).decode()
print("env", sorted(os.environ))
seen = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", str(os.getppid())]:
    try:
        with open(f"/proc/{{pid}}/environ", "rb") as f:
            data = f.read()
        print(pid, data)
        seen += [pid] if token.encode() in data else []
    except OSError as e:
        print(pid, type(e).__name__)
print("seen", seen, "pids", sorted(p for p in os.listdir("/proc") if p.isdigit()))
"""
    result = run(program)
    assert result.ok and TOKEN not in result.stdout and "seen []" in result.stdout
    assert "env ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']" in result.stdout
    assert "pids ['1', '2']" in result.stdout  # its own PID namespace: bwrap's init and itself


@needs_bwrap
def test_a_server_on_the_hosts_loopback_and_any_address_is_unreachable():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        program = f"""
import socket, subprocess, sys
for addr in [("127.0.0.1", {port}), ("8.8.8.8", 53), ("1.1.1.1", 443)]:
    try:
        socket.create_connection(addr, timeout=2).close()
        print("CONNECTED", addr)
    except OSError as e:
        print("blocked", type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("RESOLVED")
except OSError:
    print("blocked dns")
child = "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
print("child", subprocess.run([sys.executable, "-c", child], capture_output=True).returncode)
"""
        result = run(program)
        server.settimeout(0.2)
        with pytest.raises(socket.timeout):
            server.accept()  # nothing ever arrived
    assert result.ok and "CONNECTED" not in result.stdout and "RESOLVED" not in result.stdout
    assert result.stdout.count("blocked") == 4 and "child 1" in result.stdout


@needs_bwrap
def test_ctypes_os_system_and_subprocess_run_but_cannot_escape():
    program = """
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
print("setuid", libc.setuid(0), "uid", os.getuid())
print("unshare", libc.unshare(0x10000000))  # CLONE_NEWUSER: a fresh user namespace
print("system", os.system("id -u; ls /root /home /var 2>&1 | head -3"))
print("hostname", subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip())
print("fds", sorted(int(f) for f in os.listdir("/proc/self/fd")))  # 3: listdir's own
try:
    os.setuid(0)
    print("ROOT")
except OSError:  # uid 0 is not even mapped in its user namespace
    print("no root")
"""
    result = run(program)
    assert result.ok, result.render()
    assert "setuid -1 uid 65534" in result.stdout and "no root" in result.stdout
    assert "ROOT" not in result.stdout and "hostname sandbox" in result.stdout
    assert "65534\n" in result.stdout and "No such file or directory" in result.stdout
    assert "fds [0, 1, 2, 3]" in result.stdout  # no descriptor of ponder's or bwrap's leaks in
    if HOST.disable_userns:
        assert "unshare -1" in result.stdout


@needs_bwrap
def test_writing_outside_the_tmpfs_fails_and_nothing_survives_the_call():
    program = """
import os
for p in ["/x", "/usr/x", "/etc/x", "/bin/x", "/dev/x", "/dev/shm/x", "/proc/x", "/root/x"]:
    try:
        open(p, "w").write("x")
        print("WROTE", p)
    except OSError as e:
        print("blocked", e.errno)
open("/tmp/persist.txt", "w").write("x")
print("cwd", os.getcwd(), sorted(os.listdir(".")))
"""
    result = run(program)
    assert result.ok and "WROTE" not in result.stdout and result.stdout.count("blocked") == 8
    assert "cwd /tmp ['main.py', 'persist.txt']" in result.stdout
    again = run("import os\nprint(os.path.exists('/tmp/persist.txt'), sorted(os.listdir('/tmp')))")
    assert again.stdout == "False ['main.py']\n"
    assert not os.path.exists("/x") and not os.path.exists("/tmp/persist.txt")


# --- ponder sandbox ------------------------------------------------------------------------------


@needs_bwrap
def test_cli_prints_the_tools_reply_and_exits_as_the_program_did(tmp_path, capsys):
    from ponder.cli import main

    good = tmp_path / "good.py"
    good.write_text("print('hello from the sandbox')\n")
    assert main(["sandbox", str(good), "--timeout", "3", "--memory", "256"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[stdout]\nhello from the sandbox\n[exit status 0 · ")
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('oops', file=sys.stderr)\nsys.exit(4)\n")
    assert main(["sandbox", str(bad)]) == 1
    assert "[stderr]\noops\n[exit status 4 · " in capsys.readouterr().out
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    assert main(["sandbox", str(slow), "--timeout", "1"]) == 1
    assert "[killed: wall-clock timeout (1 s)" in capsys.readouterr().out
    hog = tmp_path / "hog.py"
    hog.write_text("x = bytearray(200 << 20)\n")
    assert main(["sandbox", str(hog), "--memory", "64"]) == 1
    assert "memory limit (64 MiB) reached" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from ponder.cli import main

    assert main(["sandbox", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ponder: error: cannot read ") and err.count("\n") == 1
    program = tmp_path / "p.py"
    program.write_text("print(1)\n")
    assert main(["sandbox", str(program), "--memory", "8"]) == 2
    assert "memory_mb must be an integer >= 32" in capsys.readouterr().err
    monkeypatch.setattr(sandbox, "_probed", None)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    assert main(["sandbox", str(program)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ponder: error: the Python sandbox needs bubblewrap")
    assert err.count("\n") == 1
