"""Countdown traces that are real searches: the stream of nodes a symbolic search visits.

After *Stream of Search* (Gandhi et al. 2024): a model trained on the written-out streams of several
symbolic BFS/DFS procedures (dead ends and backtracking included) learns to search, where one
trained on optimal paths only learns to guess. Here every line of a trace is a step the procedure
really takes, so a model that continues a trace is continuing a search, not imitating an oracle.
Departures from the paper, for a character-level model with 1024 positions: four procedures, not
twelve; one short line per step (``50+7=57 [57 3|46]``, no node ids or "Exploring Operation"
prose, about a tenth of its length); the checks of a two-number state on one line; products above
``MAX_VALUE`` not tried; visited states marked ``seen`` instead of searched again.

The rules every procedure follows (the same for all, so any trace replays under them):

* A state is the numbers left, largest first, with the target: ``[50 7 3|46]``.
* A move combines two numbers of the state, larger first: ``a+b``, ``a-b`` (only when a > b: no zero
  or negative numbers), ``a*b`` and ``a/b`` (only when b > 1: by 1 they use a number up and change
  nothing; ``/`` only when b divides a: every number stays a whole number). A product above
  ``MAX_VALUE`` (1000) is not tried: a tiny model slips on the digits of big products, and a value
  that far above every target (at most 999) must come down again before it can hit one.
* The *fixed enumeration* of a state: pairs in the order the state is written (first with second,
  first with third, ..., second with third, ...; a pair of values already taken is skipped), each
  with ``+ - * /`` in that order. Every procedure either walks it lazily or writes it out.
* A move whose result is the target ends the search: ``50-4=46 ok``. A state of two numbers is
  checked on one line (``57+3=60 57-3=54 57*3=171 57/3=19 no``): its moves leave one number.
* A search never tries a move twice from the same state (the same numbers, by whatever moves they
  were reached): the depth-first procedures mark a state visited before ``seen`` (it is dead: a
  state is never its own ancestor, the numbers shrink) and go on; the beam keeps one node per state.

Procedures (named on the trace's first line, so a sampler's choice of procedure is visible and the
rest of the trace follows from it):

* ``dfs``: depth first in the fixed enumeration, one move per line, its subtree below it.
* ``near``: depth first, nearest to the target first. A node first writes its fixed enumeration on
  one line (every move with its result), then visits the moves in order of ``|result - target|``
  (ties in enumeration order): the order is computed from numbers already on the page.
* ``big``: the same, largest result first.
* ``beam``: breadth first with a beam of ``BEAM_WIDTH`` nodes per level, nearest first. Each level
  writes one line per kept node: the path of moves that led to it, its state and its fixed
  enumeration (its checks, for a two-number state); the first level is the start state's
  enumeration alone. The next level keeps the ``BEAM_WIDTH`` moves of the whole level whose
  results are nearest the target (ties in the order written), one per state. The beam is
  incomplete by design: it can end without a hit on a solvable problem (13% of 3-number and 37%
  of 4-number ones), and then the search gives up.

Line format, indentation = depth (one space per level; ``beam`` writes its path instead)::

    dfs [50 7 3|46]                      the procedure and the start state
    50+7=57 [57 3|46]                    a move and the state it leaves
     57+3=60 57-3=54 57*3=171 57/3=19 no a two-number state checked: a dead end
    back [50 7 3|46]                     backtrack to this state; its next move follows
    50-7=43 [43 3|46]
     43+3=46 ok                          the target: the search ends

``back [state]`` is written on returning to a state that still has moves to try (a state with none
left is dead too: the search goes on up to the next one that has). A procedure that runs out of
moves, or whose trace would pass its length cap, ends with ``give up`` (``lab.traces`` keeps no such
trace). A beam trace, 4 numbers::

    beam [100 75 8 1|16]
    100+75=175 100-75=25 100+8=108 100-8=92 100*8=800 100+1=101 ... 8+1=9 8-1=7
    8+1=9 [100 75 9|16] 100+75=175 100-75=25 100+9=109 100-9=91 100*9=900 75+9=84 75-9=66 75*9=675
    100-75=25 [25 8 1|16] 25+8=33 25-8=17 25*8=200 25+1=26 25-1=24 8+1=9 8-1=7
    8-1=7 [100 75 7|16] 100+75=175 100-75=25 100+7=107 100-7=93 100*7=700 75+7=82 75-7=68 75*7=525
    100-75=25,25-8=17 [17 1|16] 17+1=18 17-1=16 ok

Why this shape: in a probe (issue 13) a tiny model trained on exhaustive DFS traces in a random
move order repeated moves (nothing on the page said which were tried); with a fixed order the loops
went, but it slipped on two-digit products, invented inexact divisions (``8/3=2``) and missed hits
against a target written far back in the prompt. So every order here is computable from the page,
only exact whole-number moves exist, big products are not tried, and every check is local: the
target is restated in every state (a two-number check line sits right under its state), and a
return restates the state it returns to, so the numbers available are on a recent line.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_VALUE = 1000  # products above this are not tried (see the module docstring)
BEAM_WIDTH = 3
PROCEDURES = ("dfs", "near", "big", "beam")
GIVE_UP = "give up"


Items = tuple[tuple[int, str], ...]  # a state: (value, expression), largest value first


@dataclass(frozen=True)
class Move:
    a: int
    op: str
    b: int
    value: int
    left: Items  # the numbers left
    expr: str  # the expression of ``value`` in the given numbers

    def __str__(self) -> str:
        return f"{self.a}{self.op}{self.b}={self.value}"


def apply(a: int, op: str, b: int) -> int | None:
    """The value of ``a op b`` (a >= b) under the rules, or None when the move is not allowed."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b if b > 1 and a * b <= MAX_VALUE else None
    if op == "/":
        return a // b if b > 1 and a % b == 0 else None
    raise ValueError(f"unknown operation {op!r}")


def moves(items: Items) -> list[Move]:
    """The fixed enumeration of a state (see the module docstring)."""
    out, seen = [], set()
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (a, ea), (b, eb) = items[i], items[j]  # a >= b: the state is sorted
            if (a, b) in seen:
                continue
            seen.add((a, b))
            rest = items[:i] + items[i + 1 : j] + items[j + 1 :]
            for op in "+-*/":
                value = apply(a, op, b)
                if value is not None:
                    expr = f"{_wrap(ea)}{op}{_wrap(eb)}"
                    out.append(Move(a, op, b, value, _sort(rest + ((value, expr),)), expr))
    return out


def state(items: Items, target: int) -> str:
    return "[" + " ".join(str(v) for v, _ in items) + f"|{target}]"


def start(numbers: list[int]) -> Items:
    return _sort(tuple((n, str(n)) for n in numbers))


def _sort(items) -> Items:
    return tuple(sorted(items, key=lambda item: -item[0]))  # stable: equal values keep their order


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


class _Capped(Exception):
    """The trace would pass its length cap."""


class _Trace:
    def __init__(self, max_chars: int) -> None:
        self.lines: list[str] = []
        self.chars, self.max_chars = 0, max_chars

    def add(self, line: str) -> None:
        # room is kept for the give-up line, so a capped trace still fits the cap
        if self.chars + len(line) + 1 + len(GIVE_UP) > self.max_chars:
            raise _Capped
        self.lines.append(line)
        self.chars += len(line) + 1


@dataclass(frozen=True)
class Search:
    procedure: str
    trace: str
    answer: str | None  # the expression that hits the target; None when the search gave up
    capped: bool  # gave up because the trace reached its length cap (not because moves ran out)


def search(numbers: list[int], target: int, procedure: str, max_chars: int) -> Search:
    """Run ``procedure`` on the problem and write down what it visits, at most ``max_chars``."""
    if procedure not in PROCEDURES:
        raise ValueError(f"unknown countdown search {procedure!r}; known: {', '.join(PROCEDURES)}")
    items = start(numbers)
    for value, expr in items:
        if value == target:  # nothing to search
            return Search(procedure, "", expr, False)
    out = _Trace(max_chars)
    answer, capped = None, False
    try:
        out.add(f"{procedure} {state(items, target)}")
        if procedure == "beam":
            answer = _beam(items, target, out)
        else:
            answer = _depth_first(items, target, procedure, out, 0)
    except _Capped:
        capped = True
    if answer is None:
        out.lines.append(GIVE_UP)
    return Search(procedure, "\n".join(out.lines), answer, capped)


def _check_line(items: Items, target: int) -> tuple[str, str | None]:
    """The one-line check of a two-number state: (line, expression of the hit or None)."""
    words = []
    for mv in moves(items):
        words.append(str(mv))
        if mv.value == target:
            return " ".join(words) + " ok", mv.expr
    return " ".join(words + ["no"]), None


def _expansion(ms: list[Move], target: int) -> tuple[str, str | None]:
    """A node's fixed enumeration on one line, cut at a hit: (line, expression of the hit)."""
    words = []
    for mv in ms:
        words.append(str(mv))
        if mv.value == target:
            return " ".join(words) + " ok", mv.expr
    return " ".join(words), None


def _order(ms: list[Move], target: int, procedure: str) -> list[Move]:
    if procedure == "near":
        return sorted(ms, key=lambda m: abs(m.value - target))  # stable: ties keep their order
    if procedure == "big":
        return sorted(ms, key=lambda m: -m.value)
    return ms


def _depth_first(
    items: Items, target: int, procedure: str, out: _Trace, depth: int, seen: set | None = None
) -> str | None:
    seen = {_values(items)} if seen is None else seen  # every state visited so far: all dead
    pad = " " * depth
    if len(items) == 2:
        line, hit = _check_line(items, target)
        out.add(pad + line)
        return hit
    ms = moves(items)
    if procedure != "dfs":  # near, big: the enumeration first, then the visits in their order
        line, hit = _expansion(ms, target)
        out.add(pad + line)
        if hit is not None:
            return hit
        ms = _order(ms, target, procedure)
    for k, mv in enumerate(ms):
        if mv.value == target:  # only dfs gets here: the others stopped at their expansion
            out.add(f"{pad}{mv} ok")
            return mv.expr
        if _values(mv.left) in seen:  # reached before by other moves, and dead
            out.add(f"{pad}{mv} {state(mv.left, target)} seen")
        else:
            seen.add(_values(mv.left))
            out.add(f"{pad}{mv} {state(mv.left, target)}")
            hit = _depth_first(mv.left, target, procedure, out, depth + 1, seen)
            if hit is not None:
                return hit
        if k < len(ms) - 1:
            out.add(f"{pad}back {state(items, target)}")
    return None


def _values(items: Items) -> tuple[int, ...]:
    return tuple(v for v, _ in items)


def _beam(items: Items, target: int, out: _Trace) -> str | None:
    """Breadth first, ``BEAM_WIDTH`` nodes per level; a node is (path of moves, state)."""
    level: list[tuple[str, Items]] = [("", items)]
    while level:
        children: list[tuple[str, Move]] = []
        for path, node in level:
            head = f"{path} {state(node, target)} " if path else ""
            if len(node) == 2:
                line, hit = _check_line(node, target)
                out.add(head + line)
            else:
                ms = moves(node)
                line, hit = _expansion(ms, target)
                out.add(head + line)
                children += [(f"{path},{mv}" if path else str(mv), mv) for mv in ms]
            if hit is not None:
                return hit
        level, kept = [], set()
        for path, mv in sorted(children, key=lambda c: abs(c[1].value - target)):
            if len(level) < BEAM_WIDTH and _values(mv.left) not in kept:  # one node per state
                kept.add(_values(mv.left))
                level.append((path, mv.left))
    return None
