"""The ``tests`` scorer: a code completion rated by the examples its prompt shows, never by the
hidden tests.

CodeT (Chen et al. 2022, "CodeT: Code Generation with Generated Tests") selects among sampled
programs by running them against tests; a fair test-time selector may only use what the prompt
gives. HumanEval's docstrings show examples, so these are the tests: the ``>>>`` doctest examples
(76 of the 164 prompts) and one-line examples such as ``f([1, 2]) ==> 3``, ``f(1) -> True``,
``f('a') returns 'b'`` or ``f(x) == y`` (49 more). The program (the prompt with the completion,
as ``code_tests.assemble`` builds it) runs in the sandbox with a harness that evaluates each
example and compares its value with the expected one; the score is the share that pass.

Departures from CodeT: the tests come from the prompt, not from the model (no generated tests, no
dual agreement between programs and tests); examples that are not plain calls with literal
arguments and a literal expected value are skipped (``is_happy(a) => False``, statements, calls
over several lines). A prompt without usable examples scores 0.5 for a program that runs and 0.0
for one that crashes, so selection still prefers programs that at least load. On HumanEval this
finds 379 examples in 134 of the 164 prompts; 131 canonical solutions pass all of theirs, and the
other 3 fail examples the prompts themselves get wrong (HumanEval/47's median, /130's tri, /148's
one-planet "tuple").

The harness's report line carries a nonce drawn per run (``code_tests.draw_nonce``), so a program
that prints a fake report and exits is not believed.
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import re
from dataclasses import dataclass, field, replace

from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.tools.limits import RunResult, SandboxLimits
from ponder.tools.sandbox import run_python
from ponder.verify.code_tests import (
    GRADE_LIMITS,
    assemble,
    code_meta,
    draw_nonce,
    extract_code,
    failure_reason,
)
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt, FreeScorer, refuse_mismatch

# What separates a call from its expected value in one-line examples, longest first.
_ARROW = re.compile(
    r"^\s*(?:#\s*)?(?:==>|=>|->|➞|→|==|=|should\s+return|returns?)\s*(.+)$", re.I
)


@dataclass(frozen=True)
class Example:
    """A visible example: ``call`` (a Python expression) should give ``expected`` (a Python
    literal, as source)."""

    call: str
    expected: str


def visible_examples(prompt: str, entry_point: str) -> list[Example]:
    """The examples in the entry point's part of ``prompt`` (its docstring), in order, without
    repeats."""
    text = _docstring(prompt, entry_point)
    found: list[Example] = []
    for call, want in _doctest_examples(text):
        if _is_call(call, entry_point) and (expected := _literal(want)) is not None:
            found.append(Example(call, expected))
    if not found:
        for line in text.splitlines():
            if ">>>" in line:
                continue
            if (ex := _one_line_example(line, entry_point)) is not None:
                found.append(ex)
    return list(dict.fromkeys(found))


def _doctest_examples(text: str) -> list[tuple[str, str]]:
    """``(source, want)`` of the ``>>>`` examples; doctest's parser, or where it refuses the
    layout (inconsistent indentation), each ``>>>`` line with the line after it."""
    try:
        examples = doctest.DocTestParser().get_examples(text)
        return [(e.source.strip(), e.want.strip()) for e in examples]
    except ValueError:
        lines = text.splitlines()
        return [(line.strip()[3:].strip(), lines[i + 1].strip() if i + 1 < len(lines) else "")
                for i, line in enumerate(lines) if line.strip().startswith(">>>")]  # fmt: skip


def _docstring(prompt: str, entry_point: str) -> str:
    """The entry point's docstring (a prompt that does not parse: its text from the ``def``)."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        start = prompt.find(f"def {entry_point}")
        return prompt[start:] if start >= 0 else prompt
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            return ast.get_docstring(node) or ""
    return ""


def _one_line_example(line: str, entry_point: str) -> Example | None:
    i = line.find(f"{entry_point}(")
    if i < 0 or (i > 0 and (line[i - 1].isalnum() or line[i - 1] == "_")):
        return None
    end = _closing_paren(line, i + len(entry_point))
    if end is None:
        return None
    call, rest = line[i : end + 1], line[end + 1 :]
    m = _ARROW.match(rest)
    if m is None or not _is_call(call, entry_point):
        return None
    value = m.group(1).split(" # ")[0].strip().rstrip(".").strip()
    for candidate in (value, value.rsplit("=", 1)[-1].strip()):  # "19 - 5 - 6 = 8" -> "8"
        if (expected := _literal(candidate)) is not None:
            return Example(call, expected)
    return None


def _closing_paren(line: str, open_at: int) -> int | None:
    depth, quote = 0, ""
    for j in range(open_at, len(line)):
        ch = line[j]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _is_call(source: str, entry_point: str) -> bool:
    """``entry_point(literal, ...)``: an example that needs nothing but the function."""
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id != entry_point:
        return False
    try:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _literal(text: str) -> str | None:
    """``text`` as Python literal source (``true`` read as ``True``), or None if it is not one."""
    for candidate in (text, text.replace("true", "True").replace("false", "False")):
        try:
            ast.literal_eval(candidate)
            return candidate
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


# Runs after the program, inside the sandbox. Floats compare with a tolerance (the prompts write
# 6.00 for 6.0, 1.4142 for sqrt(2)), anything else with ==; each example's outcome is one line.
_HARNESS = """

def __ponder_same(a, b):
    import math
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(__ponder_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
        except TypeError:
            return False
    return a == b


def __ponder_examples(examples, nonce):
    passed = 0
    for i, (call, expected) in enumerate(examples, 1):
        try:
            got = eval(call)
        except BaseException as e:  # SystemExit too: the example failed
            print(f"example {i}: {call} raised {type(e).__name__}: {e}")
            continue
        if __ponder_same(got, eval(expected)):
            passed += 1
            print(f"example {i}: {call} == {expected} ok")
        else:
            print(f"example {i}: {call} returned {got!r}, expected {expected}")
    print(f"{passed}/{len(examples)} examples pass")
    print(nonce, passed, len(examples))


__ponder_examples(%r, %r)
"""


def visible_program(prompt: str, code: str, entry_point: str, nonce: str) -> str:
    """The program that runs ``code`` (a completion's code) on the prompt's visible examples."""
    examples = [(e.call, e.expected) for e in visible_examples(prompt, entry_point)]
    return assemble(prompt, code, entry_point) + _HARNESS % (examples, nonce)


@dataclass(frozen=True)
class VisibleRun:
    """What running a completion on the visible examples gave: ``passed`` of ``total`` (None: the
    report never came, the program failed first), and the run with the nonce line taken out."""

    passed: int | None
    total: int
    result: RunResult


def run_visible(prompt: str, code: str, entry_point: str, limits: SandboxLimits) -> VisibleRun:
    nonce = draw_nonce()
    total = len(visible_examples(prompt, entry_point))
    result = run_python(visible_program(prompt, code, entry_point, nonce), limits)
    passed, kept = None, []
    for line in result.stdout.splitlines(True):
        if line.startswith(nonce + " "):
            if result.exit_code == 0:
                passed = int(line.split()[1])
        else:
            kept.append(line)
    return VisibleRun(passed, total, replace(result, stdout="".join(kept)))


@dataclass
class VisibleTests(FreeScorer):
    """``tests``: the share of the prompt's visible examples a code completion passes (free;
    rates finished answers of code problems; reads no hidden test)."""

    limits: SandboxLimits = GRADE_LIMITS
    name: str = field(default="tests", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer"}), init=False)
    checks_answer: bool = field(default=True, init=False)

    def mismatch(self, problem: Problem) -> str | None:
        if problem.kind == "code":
            return None
        return f"the tests scorer rates code problems; problem {problem.id} is {problem.kind!r}"

    async def score(self, problem: Problem, attempt: Attempt, model: Model | None) -> Score:
        refuse_mismatch(self, problem)
        prompt, _, entry_point = code_meta(problem)
        code = extract_code(attempt.text, entry_point)
        if not code.strip():
            return Score(False, 0.0, "no code in the completion")
        run = await asyncio.to_thread(run_visible, prompt, code, entry_point, self.limits)
        if run.passed is None:
            return Score(False, 0.0, f"fails before the examples: {failure_reason(run.result)}")
        if run.total == 0:
            return Score(True, 0.5, "runs; the prompt shows no usable example")
        ok = run.passed == run.total
        return Score(ok, run.passed / run.total, f"{run.passed}/{run.total} visible examples pass")
