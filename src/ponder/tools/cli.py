"""`ponder sandbox FILE.py`: run a file exactly as the model's Python tool would, print its reply.

This is how a user (and the tests) checks the sandbox on a machine: the output is the tool reply
the model would get, and the exit status is 0 only when the program exited 0.
"""

from __future__ import annotations

import argparse
import dataclasses

from ponder.argtypes import positive_int
from ponder.errors import UserError


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def add_sandbox_commands(sub) -> None:
    s = sub.add_parser(
        "sandbox", help="run a Python file in the code tool's sandbox; print what the model sees"
    )
    s.add_argument("file", help="the Python program to run")
    s.add_argument(
        "--timeout", type=positive_seconds, metavar="S", help="wall-clock seconds (default 10; also CPU seconds)"
    )
    s.add_argument("--memory", type=positive_int, metavar="MB", help="address space in MiB (default 512)")
    s.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ponder.tools.sandbox import SandboxLimits, run_python

    try:
        with open(args.file, encoding="utf-8", errors="replace") as f:
            source = f.read()
    except OSError as e:
        raise UserError(f"cannot read {args.file}: {e.strerror or e}") from None
    changes = {}
    if args.timeout is not None:
        changes["timeout_s"] = args.timeout
    if args.memory is not None:
        changes["memory_mb"] = args.memory
    try:
        limits = dataclasses.replace(SandboxLimits(), **changes)
    except ValueError as e:
        raise UserError(str(e)) from None
    result = run_python(source, limits)
    print(result.render(), flush=True)
    return 0 if result.ok else 1
