"""Code problems graded by execution: a completion passes when the problem's tests pass against it
in the sandbox.

The HumanEval protocol (Chen et al. 2021, "Evaluating Large Language Models Trained on Code";
openai/human-eval ``execution.py``): the program is ``prompt + completion + test`` followed by
``check(entry_point)``, and the completion passes when that program exits cleanly. Departures:

- the program runs in ponder's OS-level sandbox (``tools.sandbox``: namespaces, rlimits, a wall
  clock), not in human-eval's in-process ``exec`` with monkey-patched guards, which its own code
  calls "NOT a security sandbox";
- chat models rarely answer with a bare function body, so the completion's code is read first
  (``extract_code``): the last fenced block that defines the entry point, else the last fenced
  block, else the raw text. A completion that defines ``entry_point`` at the top level is a full
  function: it goes after the whole prompt, so the prompt's imports and helper functions stay and
  the completion's definition replaces the prompt's stub (a docstring-only function, valid
  Python). Anything else is a body, appended to the prompt as human-eval does (re-indented by four
  spaces when its first line is not indented: a body written flush left);
- passing needs more than exit status 0: after ``check`` returns, the program prints a nonce
  drawn for that run, and only a run whose output ends with it passes. A completion that calls
  ``sys.exit(0)`` or ``os._exit(0)`` inside the function (the tests then never finish) would
  otherwise pass: human-eval's ``exec`` counts that SystemExit as a failure, and so does this;
- the Score's reason names the failure (the failing assertion, a syntax error, the limit that
  killed the run, the exception), so traces and rewards say why a program failed.

A wrong program is a Score; a problem without ``prompt``, ``test`` and ``entry_point`` in its meta
is our bug (ValueError); no sandbox here is the user's setup (``SandboxUnavailable``).
"""

from __future__ import annotations

import re
import secrets

from ponder.problems.base import Problem
from ponder.tools.limits import RunResult, SandboxLimits
from ponder.tools.sandbox import run_python
from ponder.verify.score import Score

# Grading limits: HumanEval's slowest canonical solutions take well under a second; 10 s leaves
# room for a shared, loaded CPU.
GRADE_LIMITS = SandboxLimits(timeout_s=10.0, memory_mb=512)

# ```python / ```py / ```python3 / a bare ``` (not ```output, the tool's replies, or ```text).
_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)
_OTHER_FENCE = re.compile(r"```[ \t]*[A-Za-z]")
_REASON_CHARS = 160


def code_meta(problem: Problem) -> tuple[str, str, str]:
    """``(prompt, test, entry_point)`` of a code problem; ValueError when one is missing."""
    missing = [k for k in ("prompt", "test", "entry_point") if not problem.meta.get(k)]
    if missing:
        raise ValueError(f"problem {problem.id}: a code problem needs meta {', '.join(missing)}")
    return problem.meta["prompt"], problem.meta["test"], problem.meta["entry_point"]


def fenced_blocks(text: str) -> list[str]:
    """The Python code blocks of ``text`` in order (a block left open at the end counts: a sample
    cut at ``max_tokens``); blocks in other languages (```output, ```text) are skipped."""
    blocks, pos = [], 0
    while (start := text.find("```", pos)) >= 0:
        m = _FENCE.match(text, start)
        if m is None:  # another language: skip to its closing fence
            close = text.find("```", start + 3)
            if close < 0:
                break
            pos = close + 3
            continue
        blocks.append(m.group(2))
        pos = m.end()
    return blocks


def defines(code: str, entry_point: str) -> bool:
    """Whether ``code`` defines ``entry_point`` at the top level (a full function)."""
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def extract_code(text: str, entry_point: str) -> str:
    """The code of a completion: the last fenced block defining ``entry_point``, else the last
    fenced block, else the text itself (a raw completion, human-eval's format)."""
    blocks = fenced_blocks(text)
    for block in reversed(blocks):
        if defines(block, entry_point):
            return block
    if blocks:
        return blocks[-1]
    return "" if _OTHER_FENCE.match(text.lstrip()) else text


def assemble(prompt: str, completion_code: str, entry_point: str) -> str:
    """The program that defines the solution: the prompt, then the full function or the body."""
    code = completion_code.rstrip() + "\n"
    if defines(code, entry_point):
        return prompt.rstrip() + "\n\n\n" + code
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first and not first[0].isspace():  # a body written flush left
        code = "".join(f"    {line}" if line.strip() else line for line in code.splitlines(True))
    return prompt + code


def graded_program(problem: Problem, completion: str, nonce: str) -> str | None:
    """The whole graded program for a completion, printing ``nonce`` once the tests pass (None:
    the completion holds no code at all)."""
    prompt, test, entry_point = code_meta(problem)
    code = extract_code(completion, entry_point)
    if not code.strip():
        return None
    program = assemble(prompt, code, entry_point)
    return f"{program}\n\n{test}\n\ncheck({entry_point})\nprint({nonce!r})\n"


def finished(result: RunResult, nonce: str) -> bool:
    """The run exited 0 and its last line is ``nonce``: the program ran to its end."""
    lines = result.stdout.rstrip().splitlines()
    return result.ok and bool(lines) and lines[-1] == nonce


def draw_nonce() -> str:
    return f"ponder-done-{secrets.token_hex(8)}"


def run_tests(
    problem: Problem, completion: str | None, limits: SandboxLimits = GRADE_LIMITS
) -> Score:
    """Grade ``completion`` (model text, or a bare body) by the problem's tests, in the sandbox."""
    if completion is None or not completion.strip():
        code_meta(problem)
        return Score(False, 0.0, "no completion")
    nonce = draw_nonce()
    program = graded_program(problem, completion, nonce)
    if program is None:
        return Score(False, 0.0, "no code in the completion")
    result = run_python(program, limits)
    if finished(result, nonce):
        return Score(True, 1.0, "passes the tests")
    return Score(False, 0.0, failure_reason(result))


def failure_reason(result: RunResult) -> str:
    """Why a run failed, in a short phrase: the limit that ended it, the failing assertion, a
    syntax error or the exception."""
    if result.killed_by is not None:
        return f"stopped by the {result.limits.describe(result.killed_by)}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code == 0:
        return "exited before the tests finished (the program called exit)"
    if not lines:
        return f"exit status {result.exit_code} without an error message"
    last = lines[-1].strip()
    name = last.split(":", 1)[0]
    if name in ("SyntaxError", "IndentationError", "TabError"):
        where = next((ln for ln in reversed(lines) if ln.lstrip().startswith('File "')), "")
        line_no = re.search(r"line (\d+)", where)
        at = f" at line {line_no.group(1)} of the program" if line_no else ""
        msg = last.split(":", 1)[1].strip() if ":" in last else ""
        return _short(f"{name}{at}" + (f": {msg}" if msg else ""))
    if name == "AssertionError":
        # The traceback's last source line is the failing assert (test code is not indented
        # deeper than 4, so strip it).
        source = next((ln.strip() for ln in reversed(lines[:-1]) if not ln.lstrip().startswith(
            ("File ", "Traceback", "^", "~"))), "")
        detail = f": {source}" if source.startswith("assert") else ""
        msg = last[len("AssertionError"):].lstrip(": ")
        return _short(f"a test failed{detail}" + (f" ({msg})" if msg else ""))
    return _short(f"raised {last}")


def _short(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
