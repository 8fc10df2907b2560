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
* countdown: the stream of a symbolic search (``lab.countdown_search``, which has the rules and
  the format): every move it tries with its result and the numbers left, every dead end and the
  ``back [state]`` that leaves it, until a move hits the target (``43+3=46 ok``). The answer is
  the hit's fully parenthesised expression without spaces (``((25-7)+3)*4``: one "word", so that
  ``extract_answer`` keeps it whole). Four procedures (``dfs``, ``near``, ``big``, ``beam``); a
  problem's id picks the one its trace starts with (``procedure_for``), and the first line names
  it, so one model learns all four and a sampler's choice of procedure is visible in its sample.
  Nothing on the page comes from an oracle: each move follows from the state, the target and the
  moves written before it. (The old traces chose their moves with a solvability oracle, so a model
  learned to guess the right move and fake a backtrack; the generator alone now knows a problem
  is solvable, by construction.)
* sudoku: a depth-first search over the blanks in reading order, smallest candidate first.
  ``r2c3=4`` fills a forced cell, ``r2c3=1?`` guesses (more candidates remain), ``r3c1 none`` is a
  dead end and ``back r2c3=4`` returns to the latest open guess with its next candidate. The
  answer is the grid, rows split by "/".

Countdown traces are capped at ``COUNTDOWN_MAX_CHARS`` so that prompt + completion fit the lab
models' 1024 positions. Capped or exhausted searches are **dropped, not kept with a give-up**: when
a problem's procedure gives up, the next procedure that reaches the target within the cap writes
its trace instead; a problem no procedure solves within the cap (about a fifth of 4-number problems,
none of 3-number ones at the default cap) gets no row (``NoTrace``). Why: trained on give-ups, a
model learns to stop after about the cap's length, which is exactly what a larger thinking budget
must not meet; trained on searches that end in a hit, it keeps searching while the budget lasts,
and the RL stage is free to teach it when to stop. The price is a selection effect, said openly:
the procedure named on a row's first line is one that succeeded on that problem, so the data
carries a mild prior of which procedure suits which problem (every line after it is honest).

Traces are deterministic: a problem's id picks its countdown procedure; nothing else is random.
"""

from __future__ import annotations

import zlib

from ponder.lab import countdown_search, format
from ponder.problems import load_problems
from ponder.problems.base import Problem

# Lab task -> (problem generator, fixed options) and the options a user may set.
TASKS: dict[str, tuple[str, dict]] = {
    "add": ("arith", {"op": "add"}),
    "mul": ("arith", {"op": "mul"}),
    "countdown": ("countdown", {}),
    "sudoku": ("sudoku", {}),
}
# Countdown is held out by construction: lab runs draw from the generator's train split, so
# `countdown:split=test` (ponder bench, load_problems) shares no (numbers, target) with any of them.
TASK_DEFAULTS: dict[str, dict] = {"countdown": {"split": "train"}}
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "add": ("digits",), "mul": ("digits",), "countdown": ("count",), "sudoku": ("blanks",)
}  # fmt: skip
# Trace cap: the longest prompt (~110 characters) + trace + "Answer: EXPR" + EOS fit 1024 positions.
COUNTDOWN_MAX_CHARS = 860


def make_problems(task: str, n: int, seed: int = 0, **options) -> list[Problem]:
    """``n`` seeded problems of lab task ``task`` (add, mul, countdown, sudoku)."""
    if task not in TASKS:
        raise ValueError(f"unknown lab task {task!r}; known: {', '.join(TASKS)}")
    generator, fixed = TASKS[task]
    options = {**TASK_DEFAULTS.get(task, {}), **options, **fixed}
    return load_problems(generator, limit=n, seed=seed, **options)


def worked_solution(problem: Problem) -> tuple[str, str]:
    """(trace, answer) for a generated problem; ``NoTrace`` for a countdown no search solves
    within the cap."""
    meta = problem.meta
    task = meta.get("task")
    if task == "arith":
        if meta["op"] == "add":
            return addition_trace(meta["a"], meta["b"])
        return multiplication_trace(meta["a"], meta["b"])
    if task == "countdown":
        found = countdown_search_for(problem)
        return found.trace, found.answer
    if task == "sudoku":
        return sudoku_trace(meta["puzzle"])
    raise ValueError(f"problem {problem.id}: no worked traces for task {task!r}")


def completion(problem: Problem) -> str:
    """The completion the model is trained to write: trace, then ``Answer: ...``."""
    return format.completion_text(*worked_solution(problem))


def has_trace(problem: Problem) -> bool:
    try:
        worked_solution(problem)
    except NoTrace:
        return False
    return True


def examples(task: str, n: int, seed: int = 0, **options) -> list[dict]:
    """Prompt/completion rows (no EOS yet) for ``n`` generated problems, less those without a
    trace (``NoTrace``: countdowns no search solves within the cap)."""
    rows = []
    for p in make_problems(task, n, seed, **options):
        try:
            text = completion(p)
        except NoTrace:
            continue
        rows.append({
            "prompt": format.prompt_text(p.question),
            "completion": text,
            "problem_id": p.id,
            "answer": p.answer,
        })  # fmt: skip
    return rows


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


class NoTrace(ValueError):
    """No search procedure reaches the target within the length cap: the problem gets no row."""


def procedure_for(problem_id: str) -> str:
    """The search procedure a problem's trace starts with: a stable hash of its id (crc32, not
    ``hash()``, which changes between Python runs), so traces are reproducible."""
    procedures = countdown_search.PROCEDURES
    return procedures[zlib.crc32(problem_id.encode()) % len(procedures)]


def countdown_search_for(
    problem: Problem, procedure: str | None = None, max_chars: int = COUNTDOWN_MAX_CHARS
) -> countdown_search.Search:
    """The search written as ``problem``'s trace: ``procedure`` (default: ``procedure_for`` its id)
    or, when that one gives up within ``max_chars``, the next procedure of
    ``countdown_search.PROCEDURES`` (in a circle) that does not. Raises ``NoTrace`` when none
    reaches the target."""
    procedures = countdown_search.PROCEDURES
    first = procedures.index(procedure or procedure_for(problem.id))
    numbers, target = problem.meta["numbers"], problem.meta["target"]
    for k in range(len(procedures)):
        found = countdown_search.search(
            numbers, target, procedures[(first + k) % len(procedures)], max_chars
        )
        if found.answer is not None:
            return found
    raise NoTrace(f"countdown {numbers} -> {target}: no search hits it in {max_chars} characters")


def countdown_trace(
    numbers: list[int], target: int, procedure: str = "dfs", max_chars: int = COUNTDOWN_MAX_CHARS
) -> tuple[str, str | None]:
    """(trace, answer) of one procedure; the answer is None when it gave up."""
    found = countdown_search.search(numbers, target, procedure, max_chars)
    return found.trace, found.answer


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
