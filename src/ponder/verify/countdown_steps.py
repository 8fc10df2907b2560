"""``countdown``: a step verifier for countdown searches written one move per line.

A process verifier in the sense of Lightman et al. 2023 ("Let's Verify Step by Step"), but exact:
no model is asked. It reads the line format of the lab's search traces (``lab.countdown_search``:
``50+7=57 [57 3|46]`` moves with the state they leave, ``back [state]`` returns, one-line checks of
two-number states ending ``no`` or ``ok``, indentation = depth) and rates the latest line:

- every ``a op b = c`` on it is right, exactly (``-`` only to a positive result, ``/`` only when
  exact, as the traces' rules say);
- its numbers are still available at that point: a line at depth d uses the state of depth d (set
  by the start state, the move one level up, or a ``back`` line), and a path of moves before a
  state (the beam's lines) is chained move by move from it;
- a written state is what the move leaves (and keeps the target), a ``back`` restates its state;
- a hit is not missed: a line ending ``no`` shows no move that reaches the target, and one ending
  ``ok`` ends with such a move;
- no loop: a depth-first line (one move and the state it leaves) does not repeat a move already
  tried from the same numbers (the traces never do: a state reached again is ``seen``, not
  searched again), which is how a model that lost its place starts over;
- an ``Answer:`` line states an expression the countdown grader accepts.

A finished solution passes when every line does and its answer (an ``Answer:`` line, or what
``extract_answer`` read from a solution without one) is one the grader accepts. Departure from a
learned PRM: it knows one task's format and nothing else; text it cannot read as a move (prose)
passes unchecked, as ``arith`` passes a step with no equation. The states come from the whole
solution so far, so the verifier costs nothing but string work.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.verify.countdown import check_countdown
from ponder.verify.score import Score
from ponder.verify.scoring import Attempt, FreeScorer, refuse_mismatch

_MOVE = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)")
_STATE = re.compile(r"\[([\d ]*)\|(\d+)\]")
_ANSWER = re.compile(r"^\s*Answer:\s*(.*)$")


def _apply(a: int, op: str, b: int) -> int | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b
    return a // b if b and a % b == 0 else None


@dataclass(frozen=True)
class Flaw:
    """The first wrong line of a countdown search: where (1-based), which kind, and what."""

    line: int
    kind: str  # one of KINDS
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


# What a flaw can be, in the order a report lists them: a slip in a move's arithmetic (or an
# inexact/negative move), a number used that is not left, a written state that is not what its
# moves leave, a hit passed over ("... no" although a move reached the target), an "ok" on a
# miss, a move repeated from the same numbers (a loop), and an Answer line the grader rejects.
KINDS = ("arithmetic", "unavailable", "state", "missed hit", "false hit", "loop", "answer")


def _state(text: str) -> tuple[Counter, int] | None:
    m = _STATE.search(text)
    if m is None:
        return None
    return Counter(int(x) for x in m.group(1).split()), int(m.group(2))


class _Reader:
    """Walks a trace line by line, keeping the state of each depth; ``check`` says what is wrong
    with one line (None: nothing), and ``advance`` records the states it sets."""

    def __init__(self, numbers: list[int], target: int) -> None:
        self.target = target
        self.depths: dict[int, Counter] = {0: Counter(numbers)}
        self.tried: set[tuple] = set()  # (state's numbers, a, op, b) of every one-move line

    def check(self, line: str) -> tuple[str, str] | None:
        body = line.strip()
        if not body:
            return None
        if _ANSWER.match(body):
            return None  # graded against the problem in ``_answer``
        depth = len(line) - len(line.lstrip(" "))
        here = self.depths.get(depth) or self.depths.get(max(self.depths))
        state = _STATE.search(body)
        before, after = (body[: state.start()], body[state.end() :]) if state else (body, "")
        if body.startswith("back "):
            written = _state(body)
            if written and written[0] != here:
                return "state", f"'{body}' does not restate the state it returns to"
            return None
        moves = list(_MOVE.finditer(before))
        if state is not None and len(moves) == 1 and "," not in before:  # a depth-first move
            mv = moves[0]
            if _tried_key(here, mv) in self.tried:
                shown = " ".join(map(str, sorted(here.elements(), reverse=True)))
                tried = f"{mv.group(0)} was already tried from [{shown}|{self.target}]"
                return "loop", f"{tried}: a loop"
        running = Counter(here)
        for mv in _MOVE.finditer(before):
            wrong = self._move(mv, running)
            if wrong:
                return wrong
            if state is not None:  # moves before a state are a path: each uses the last one's result
                a, b, c = int(mv.group(1)), int(mv.group(3)), int(mv.group(4))
                running = running - Counter([a, b]) + Counter([c])
        if state is not None:
            numbers, target = _state(body)
            if target != self.target:
                return "state", f"state {state.group(0)} has target {target}, not {self.target}"
            if not _MOVE.search(before) and numbers != here:
                return "state", f"state {state.group(0)} is not the numbers given"
            if _MOVE.search(before) and numbers != running:
                shown = " ".join(map(str, sorted(running.elements(), reverse=True)))
                left = f"[{shown}|{target}]"
                return "state", f"state {state.group(0)} is not what the moves leave ({left})"
            for mv in _MOVE.finditer(after):
                wrong = self._move(mv, numbers)
                if wrong:
                    return wrong
        hits = [mv for mv in _MOVE.finditer(body) if int(mv.group(4)) == self.target]
        if body.endswith(" no") and hits:
            missed = f"{hits[0].group(0)} reaches the target {self.target}"
            return "missed hit", f"{missed}, but the line says no"
        if body.endswith(" ok"):
            last = list(_MOVE.finditer(body))
            if not last or int(last[-1].group(4)) != self.target:
                return "false hit", f"the line says ok, but its last move misses {self.target}"
        return None

    def _move(self, mv: re.Match, available: Counter) -> tuple[str, str] | None:
        a, op, b, c = int(mv.group(1)), mv.group(2), int(mv.group(3)), int(mv.group(4))
        value = _apply(a, op, b)
        if value is None:
            why = "no negative, zero or inexact results"
            return "arithmetic", f"{mv.group(0)} is not allowed ({why})"
        if value != c:
            return "arithmetic", f"{mv.group(0)} is wrong ({a}{op}{b} = {value})"
        need = Counter([a, b])
        if any(available[n] < k for n, k in need.items()):
            have = " ".join(map(str, sorted(available.elements(), reverse=True)))
            return "unavailable", f"{mv.group(0)} uses a number that is not left ([{have}])"
        return None

    def advance(self, line: str) -> None:
        """Record the states ``line`` sets: the state after a move, for the next depth."""
        body = line.strip()
        depth = len(line) - len(line.lstrip(" "))
        written = _state(body)
        if written is None:
            return
        before = body[: _STATE.search(body).start()]
        moves = list(_MOVE.finditer(before))
        if len(moves) == 1 and "," not in before and not body.startswith("back "):
            here = self.depths.get(depth) or self.depths.get(max(self.depths))
            self.tried.add(_tried_key(here, moves[0]))
        if body.startswith("back ") or not moves:
            self.depths[depth] = written[0]  # a restated state, or the start state
            for d in [d for d in self.depths if d > depth]:
                del self.depths[d]
        else:
            self.depths[depth + 1] = written[0]


def _tried_key(numbers: Counter, mv: re.Match) -> tuple:
    """A move from a state, whatever path reached the state: its numbers and ``a op b``."""
    return tuple(sorted(numbers.elements())), int(mv.group(1)), mv.group(2), int(mv.group(3))


def first_flaw(problem: Problem, text: str, upto: int | None = None) -> tuple[int, Flaw | None]:
    """(lines checked, the first wrong line, or None) for the lines of ``text``; with ``upto``,
    only line ``upto`` (0-based) is checked, the lines before it only read."""
    numbers, target = list(problem.meta["numbers"]), int(problem.meta["target"])
    reader = _Reader(numbers, target)
    lines = text.split("\n")
    checked = 0
    for k, line in enumerate(lines):
        if upto is None or k == upto:
            wrong = reader.check(line) or _answer(problem, line)
            checked += bool(line.strip())
            if wrong:
                return checked, Flaw(k + 1, *wrong)
        reader.advance(line)
    return checked, None


def check_lines(problem: Problem, text: str, upto: int | None = None) -> tuple[int, str | None]:
    """``first_flaw`` with the flaw described in words (``line K: what``)."""
    checked, flaw = first_flaw(problem, text, upto)
    return checked, None if flaw is None else str(flaw)


def _answer(problem: Problem, line: str) -> tuple[str, str] | None:
    m = _ANSWER.match(line.strip())
    if m is None:
        return None
    verdict = check_countdown(m.group(1), list(problem.meta["numbers"]), int(problem.meta["target"]))
    return None if verdict.ok else ("answer", f"the answer {m.group(1)!r}: {verdict.reason}")


@dataclass
class CountdownSteps(FreeScorer):
    name: str = field(default="countdown", init=False)
    levels: frozenset[str] = field(default=frozenset({"answer", "step"}), init=False)
    checks_answer: bool = field(default=True, init=False)

    def mismatch(self, problem: Problem) -> str | None:
        if problem.kind == "countdown" and "numbers" in problem.meta:
            return None
        article = "an" if problem.kind[:1] in "aeiou" else "a"
        return (
            "verifier=countdown checks countdown puzzles, worded as 'Using the numbers 3, 7, 25 "
            "(each at most once) and + - * /, write an expression equal to 46.'; "
            f"problem {problem.id} is {article} {problem.kind} question"
        )

    async def score(self, problem: Problem, attempt: Attempt, model: Model | None) -> Score:
        refuse_mismatch(self, problem)
        if attempt.step is None:
            checked, wrong = check_lines(problem, attempt.text)
            if wrong is None and attempt.answer is None:
                return Score(False, 0.0, f"{_held(checked)}, but no answer is stated")
            if wrong is None and not any(_ANSWER.match(x) for x in attempt.text.split("\n")):
                flaw = _answer(problem, f"Answer: {attempt.answer}")  # read from prose: graded too
                wrong = flaw[1] if flaw else None
        else:
            text = attempt.prefix + attempt.step
            first = attempt.prefix.count("\n")  # the step's lines start here
            wrong, checked = None, 0
            for k in range(first, text.count("\n") + 1):
                n, wrong = check_lines(problem, text, upto=k)
                checked += n
                if wrong:
                    break
        if wrong:
            return Score(False, 0.0, wrong)
        return Score(True, 1.0, _held(checked))


def _held(lines: int) -> str:
    return "1 line holds" if lines == 1 else f"{lines} lines hold"
