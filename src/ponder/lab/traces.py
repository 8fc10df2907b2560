"""Worked traces for the generated tasks: the synthetic SFT data of the lab.

Scratchpads in the spirit of Nye et al. 2021 ("Show Your Work: Scratchpads for Intermediate
Computation with Language Models") and, for search, Gandhi et al. 2024 ("Stream of Search"): the
model is shown the intermediate steps, dead ends and backtracking included, not only the answer.
Every completion ends with ``format.completion_text(trace, answer)``; its answer passes
``verify.check`` for its problem (the tests check 200 per task).

* add: right-to-left columns, ``digit+digit+carry=sum > digits so far``; the last line's number
  is the answer (the final carry is written with the last column's sum)::

      7+5+0=12 > 2
      4+8+1=13 > 32
      3+2+1=6 > 632

* mul: one partial product per digit of the second factor, right to left, then running sums.
* countdown: a depth-first search written as ``try a*b=c, left ...`` lines. Departure from a real
  DFS trace, which would be thousands of characters: a dead end is one line ending
  ``... no; back`` (the subtree was searched exhaustively, off the page), and only 0-2 dead ends
  are shown per level, sampled from the real ones, before the move that works. The answer is a
  fully parenthesised expression without spaces (``((25-7)+3)*4``: one "word", so that
  ``extract_answer`` keeps it whole).
* sudoku: a depth-first search over the blanks in reading order, smallest candidate first.
  ``r2c3=4`` fills a forced cell, ``r2c3=1?`` guesses (more candidates remain), ``r3c1 none`` is a
  dead end and ``back r2c3=4`` returns to the latest open guess with its next candidate. The
  answer is the grid, rows split by "/".

Traces are deterministic: a problem's own id seeds the countdown's choice of dead ends.
"""

from __future__ import annotations

import functools
import random

from ponder.lab import format
from ponder.problems import load_problems
from ponder.problems.base import Problem

# Lab task -> (problem generator, fixed options) and the options a user may set.
TASKS: dict[str, tuple[str, dict]] = {
    "add": ("arith", {"op": "add"}),
    "mul": ("arith", {"op": "mul"}),
    "countdown": ("countdown", {}),
    "sudoku": ("sudoku", {}),
}
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "add": ("digits",), "mul": ("digits",), "countdown": ("count",), "sudoku": ("blanks",)
}  # fmt: skip
COUNTDOWN_MAX_CHARS = 200  # dead ends stop being shown once the trace is this long


def make_problems(task: str, n: int, seed: int = 0, **options) -> list[Problem]:
    """``n`` seeded problems of lab task ``task`` (add, mul, countdown, sudoku)."""
    if task not in TASKS:
        raise ValueError(f"unknown lab task {task!r}; known: {', '.join(TASKS)}")
    generator, fixed = TASKS[task]
    return load_problems(generator, limit=n, seed=seed, **options, **fixed)


def worked_solution(problem: Problem) -> tuple[str, str]:
    """(trace, answer) for a generated problem."""
    meta = problem.meta
    task = meta.get("task")
    if task == "arith":
        if meta["op"] == "add":
            return addition_trace(meta["a"], meta["b"])
        return multiplication_trace(meta["a"], meta["b"])
    if task == "countdown":
        return countdown_trace(meta["numbers"], meta["target"], random.Random(problem.id))
    if task == "sudoku":
        return sudoku_trace(meta["puzzle"])
    raise ValueError(f"problem {problem.id}: no worked traces for task {task!r}")


def completion(problem: Problem) -> str:
    """The completion the model is trained to write: trace, then ``Answer: ...``."""
    return format.completion_text(*worked_solution(problem))


def examples(task: str, n: int, seed: int = 0, **options) -> list[dict]:
    """Prompt/completion rows (no EOS yet) for ``n`` generated problems."""
    return [
        {
            "prompt": format.prompt_text(p.question),
            "completion": completion(p),
            "problem_id": p.id,
            "answer": p.answer,
        }
        for p in make_problems(task, n, seed, **options)
    ]


# --- arithmetic ---


def addition_trace(a: int, b: int) -> tuple[str, str]:
    xs, ys = str(a)[::-1], str(b)[::-1]
    width = max(len(xs), len(ys))
    lines, digits, carry = [], "", 0
    for i in range(width):
        x = int(xs[i]) if i < len(xs) else 0
        y = int(ys[i]) if i < len(ys) else 0
        s = x + y + carry
        # The last column writes its whole sum: the final carry is its leading digit.
        digits = (str(s) if i == width - 1 else str(s % 10)) + digits
        lines.append(f"{x}+{y}+{carry}={s} > {digits}")
        carry = s // 10
    assert int(digits) == a + b
    return "\n".join(lines), digits


def multiplication_trace(a: int, b: int) -> tuple[str, str]:
    lines, partials = [], []
    for place, digit in enumerate(reversed(str(b))):
        factor = int(digit) * 10**place
        partials.append(a * factor)
        lines.append(f"{a}*{factor}={a * factor}")
    total = partials[0]
    for p in partials[1:]:
        lines.append(f"{total}+{p}={total + p}")
        total += p
    assert total == a * b
    return "\n".join(lines), str(total)


# --- countdown ---


def _moves(items: list[tuple[int, str]]):
    """Every way to combine two items: (a, op, b, value, items left). a >= b; all values stay
    positive integers; * and / by 1 are skipped (they use a number up and change nothing)."""
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (a, ea), (b, eb) = items[i], items[j]
            if a < b:
                (a, ea), (b, eb) = (b, eb), (a, ea)
            rest = items[:i] + items[i + 1 : j] + items[j + 1 :]
            options = [("+", a + b)]
            if b > 1:
                options.append(("*", a * b))
            if a > b:
                options.append(("-", a - b))
            if b > 1 and a % b == 0:
                options.append(("/", a // b))
            for op, value in options:
                expr = f"{_wrap(ea)}{op}{_wrap(eb)}"
                yield a, op, b, value, sorted(rest + [(value, expr)], reverse=True)


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


@functools.lru_cache(maxsize=200_000)
def _solvable(values: tuple[int, ...], target: int) -> bool:
    if target in values:
        return True
    items = [(v, str(v)) for v in values]
    return any(
        _solvable(tuple(sorted(v for v, _ in left)), target) for *_, left in _moves(items)
    )


def countdown_trace(
    numbers: list[int], target: int, rng: random.Random, max_chars: int = COUNTDOWN_MAX_CHARS
) -> tuple[str, str]:
    items = sorted(((n, str(n)) for n in numbers), reverse=True)
    for value, expr in items:
        if value == target:
            return "", expr
    lines: list[str] = []
    while True:
        good, dead = [], []
        for a, op, b, value, left in _moves(items):
            step = f"try {a}{op}{b}={value}"
            wins = value == target or (
                len(left) > 1 and _solvable(tuple(sorted(v for v, _ in left)), target)
            )
            (good if wins else dead).append((step, value, left))
        if not good:
            raise ValueError(f"countdown {numbers} -> {target} has no solution")
        for step, _, left in rng.sample(dead, min(len(dead), rng.choice([0, 1, 1, 2]))):
            line = f"{step} no" if len(left) == 1 else f"{step}, left {_values(left)} ... no; back"
            if sum(len(s) + 1 for s in lines) + len(line) > max_chars:
                break
            lines.append(line)
        # A move that reaches the target now, when there is one; otherwise any that still can.
        hits = [g for g in good if g[1] == target]
        step, value, left = rng.choice(hits or good)
        if value == target:
            lines.append(f"{step} ok")
            expr = next(e for v, e in left if v == target)
            return "\n".join(lines), expr
        lines.append(f"{step}, left {_values(left)}")
        items = left


def _values(items: list[tuple[int, str]]) -> str:
    return " ".join(str(v) for v, _ in items)


# --- sudoku ---


def sudoku_trace(puzzle: str) -> tuple[str, str]:
    rows = puzzle.split("/")
    n = len(rows)
    box = int(n**0.5)
    grid = [list(r) for r in rows]
    blanks = [(r, c) for r in range(n) for c in range(n) if grid[r][c] == "."]
    steps: list[str] = []

    def candidates(r: int, c: int) -> list[str]:
        seen = set(grid[r]) | {grid[i][c] for i in range(n)}
        r0, c0 = box * (r // box), box * (c // box)
        seen |= {grid[i][j] for i in range(r0, r0 + box) for j in range(c0, c0 + box)}
        return [d for d in "123456789"[:n] if d not in seen]

    def search(k: int) -> bool:
        if k == len(blanks):
            return True
        r, c = blanks[k]
        options = candidates(r, c)
        if not options:
            steps.append(f"r{r + 1}c{c + 1} none")
            return False
        for i, d in enumerate(options):
            more = "?" if i < len(options) - 1 else ""
            steps.append(f"{'back ' if i else ''}r{r + 1}c{c + 1}={d}{more}")
            grid[r][c] = d
            if search(k + 1):
                return True
        grid[r][c] = "."
        return False

    if not search(0):
        raise ValueError(f"sudoku {puzzle} has no solution")
    return " ".join(steps), "/".join("".join(row) for row in grid)
