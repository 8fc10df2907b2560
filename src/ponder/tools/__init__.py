"""Tools a model may call. Untrusted code runs only in `sandbox` (bubblewrap + rlimits)."""

from ponder.tools.sandbox import (
    RunResult,
    SandboxError,
    SandboxLimits,
    SandboxUnavailable,
    check_available,
    run_python,
    run_python_async,
)

__all__ = [
    "RunResult",
    "SandboxError",
    "SandboxLimits",
    "SandboxUnavailable",
    "check_available",
    "run_python",
    "run_python_async",
]
