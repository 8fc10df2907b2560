"""Countdown search traces replay: a small independent reading of the rules (not the generator's
code) walks every line of a trace and checks that it is the step its procedure takes there.

For each procedure, 200 problems with 3 and 4 numbers (``count=3-4``). A trace replays when:
its first line names the procedure and the problem's state; every move uses two numbers still
available and its arithmetic is right; every state written is what that move leaves; a node
marked dead (``no``, ``seen``, a subtree left by ``back``) shows the procedure's whole
enumeration from the state written there, in the procedure's order, and every child is dead
too (re-run from the page, no oracle); no move is tried twice from one state; the hit is the
first move in the search that reaches the target, and the answer is its expression, accepted by
``ponder.verify.check``.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ponder.lab import countdown_search, format, traces
from ponder.problems import load_problems
from ponder.problems.synthetic import split_of
from ponder.verify import check, verify

PROCEDURES = ("dfs", "near", "big", "beam")
BEAM = 3
MOVE = re.compile(r"^(\d+)([-+*/])(\d+)=(\d+)$")
STATE = re.compile(r"^\[([\d ]+)\|(\d+)\]$")
WORD = re.compile(r"\[[^\]]*\]|\S+")  # a state "[50 7 3|46]" is one word


def words_of(line: str) -> list[str]:
    return WORD.findall(line)


# --- the rules, read from the module docstring, written again ---


def value(a: int, op: str, b: int) -> int | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a > b else None
    if op == "*":
        return a * b if b > 1 and a * b <= 1000 else None
    return a // b if b > 1 and a % b == 0 else None


def enumeration(nums: tuple[int, ...]) -> list[tuple[int, str, int, int]]:
    """(a, op, b, result): pairs in written order, a pair of values once, ops + - * /."""
    out, pairs = [], []
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            if (nums[i], nums[j]) not in pairs:
                pairs.append((nums[i], nums[j]))
    for a, b in pairs:
        for op in "+-*/":
            v = value(a, op, b)
            if v is not None:
                out.append((a, op, b, v))
    return out


def after(nums: tuple[int, ...], a: int, b: int, c: int) -> tuple[int, ...]:
    left = Counter(nums)
    assert left[a] >= 1 and left[b] >= (2 if a == b else 1), f"{a} and {b} are not both in {nums}"
    left[a] -= 1
    left[b] -= 1
    return tuple(sorted((left + Counter([c])).elements(), reverse=True))


def parse_state(text: str, target: int) -> tuple[int, ...]:
    m = STATE.match(text)
    assert m, f"not a state: {text!r}"
    assert int(m[2]) == target, f"state {text} restates the wrong target"
    return tuple(int(x) for x in m[1].split())


def parse_move(text: str) -> tuple[int, str, int, int]:
    m = MOVE.match(text)
    assert m, f"not a move: {text!r}"
    return int(m[1]), m[2], int(m[3]), int(m[4])


class GaveUp(Exception):
    pass


class Replay:
    """Walks a trace line by line; ``exprs`` maps each state's numbers to expressions."""

    def __init__(self, trace: str, numbers: list[int], target: int) -> None:
        self.lines, self.pos, self.target = trace.splitlines(), 0, target
        self.seen: set[tuple[int, ...]] = set()
        self.tried: dict[tuple[int, ...], list] = {}  # state -> moves tried from it
        self.dead_ends = 0
        self.start = tuple(sorted(numbers, reverse=True))
        self.procedure = None
        if not self.lines:  # nothing to search: the target is one of the numbers
            return
        first = self.next()
        self.procedure, _, state = first.partition(" ")
        assert self.procedure in PROCEDURES, first
        assert parse_state(state, target) == self.start

    def next(self) -> str:
        assert self.pos < len(self.lines), "the trace ends mid-search"
        self.pos += 1
        if self.lines[self.pos - 1] == countdown_search.GIVE_UP:
            raise GaveUp
        return self.lines[self.pos - 1]

    def tries(self, nums, move, how: str) -> None:
        """A move from a state: available numbers, right arithmetic, never tried there before
        (``how``: "listed" on an enumeration line, or "visited" with its subtree)."""
        a, op, b, c = move
        assert a >= b and value(a, op, b) == c, f"{a}{op}{b}={c} is wrong or not allowed"
        after(nums, a, b, c)  # both numbers still available
        done = self.tried.setdefault((nums, how), [])
        assert move not in done, f"{a}{op}{b} {how} twice from {nums}"
        done.append(move)

    def moves_line(self, words, nums, exprs):
        """A written enumeration (or the checks of two numbers): the procedure's enumeration in
        order, cut at the first hit. Returns (the expression of the hit or None, moves)."""
        want = enumeration(nums)
        got = [parse_move(w) for w in (words[:-1] if words and words[-1] in ("ok", "no") else words)]
        for move in got:
            self.tries(nums, move, "listed")
        hits = [k for k, m in enumerate(want) if m[3] == self.target]
        if hits:
            assert words[-1] == "ok" and got == want[: hits[0] + 1], (nums, words)
            return self.expr(nums, exprs, got[-1]), got
        assert got == want, f"from {nums} the enumeration is {want}, the trace wrote {got}"
        if len(nums) == 2:
            assert words[-1] == "no", words
            self.dead_ends += 1
        else:
            assert words[-1] != "ok", words
        return None, got

    def expr(self, nums, exprs, move) -> str:
        a, op, b, _ = move
        ea = exprs[nums.index(a)]
        eb = exprs[nums.index(b, nums.index(a) + 1) if a == b else nums.index(b)]
        wrap = lambda e: e if e.isdigit() else f"({e})"  # noqa: E731
        return f"{wrap(ea)}{op}{wrap(eb)}"

    def child_exprs(self, nums, exprs, move) -> list[str]:
        a, _, b, c = move
        rest = list(zip(nums, exprs))
        rest.remove(next(x for x in rest if x[0] == a))
        rest.remove(next(x for x in rest if x[0] == b))
        rest.append((c, self.expr(nums, exprs, move)))
        rest.sort(key=lambda x: -x[0])
        return [e for _, e in rest]

    # depth first: dfs, near, big

    def line_at(self, depth: int) -> list[str]:
        line = self.next()
        assert line.startswith(" " * depth) and line[depth] != " ", (depth, line)
        return words_of(line[depth:])

    def depth_first(self, nums, exprs, depth=0) -> str | None:
        self.seen.add(nums)
        pad = " " * depth
        if len(nums) == 2 or self.procedure != "dfs":  # checks, or near/big's enumeration line
            hit, written = self.moves_line(self.line_at(depth), nums, exprs)
            if hit or len(nums) == 2:
                return hit
            key = (lambda m: abs(m[3] - self.target)) if self.procedure == "near" else (lambda m: -m[3])
            order = sorted(written, key=key)  # stable: ties in the order written
        else:
            order = enumeration(nums)
        for k, move in enumerate(order):
            words = self.line_at(depth)
            assert parse_move(words[0]) == move, f"expected {move} from {nums}, got {words}"
            self.tries(nums, move, "visited")
            a, _, b, c = move
            if c == self.target:
                assert words[1:] == ["ok"], words
                return self.expr(nums, exprs, move)
            child = after(nums, a, b, c)
            assert parse_state(words[1], self.target) == child
            if child in self.seen:  # visited before: must be marked, and is dead
                assert words[2:] == ["seen"], words
                self.dead_ends += 1
            else:
                assert len(words) == 2, words
                hit = self.depth_first(child, self.child_exprs(nums, exprs, move), depth + 1)
                if hit:
                    return hit
            if k < len(order) - 1:  # a dead end left with a visible backtrack to this state
                assert self.next() == f"{pad}back [{' '.join(map(str, nums))}|{self.target}]"
        return None

    # breadth first: beam

    def beam(self) -> str | None:
        level = [("", self.start, [str(n) for n in self.start])]
        while level:
            children = []
            for path, nums, exprs in level:
                words = words_of(self.next())
                if path:
                    assert words[0] == path and parse_state(words[1], self.target) == nums, words
                    words = words[2:]
                hit, written = self.moves_line(words, nums, exprs)
                if hit:
                    return hit
                for move in (written if len(nums) > 2 else []):
                    name = "{}{}{}={}".format(*move)
                    children.append((f"{path},{name}" if path else name, nums, exprs, move))
            level, kept = [], set()
            for path, nums, exprs, move in sorted(children, key=lambda c: abs(c[3][3] - self.target)):
                child = after(nums, move[0], move[2], move[3])
                if len(level) < BEAM and child not in kept:
                    kept.add(child)
                    level.append((path, child, self.child_exprs(nums, exprs, move)))
        return None

    def run(self) -> str | None:
        """The hit's expression, or None when the trace gives up; ``cut``: it gave up mid-search."""
        exprs = [str(n) for n in self.start]
        self.cut = False
        if not self.lines:
            assert self.target in self.start
            return str(self.target)
        try:
            hit = self.beam() if self.procedure == "beam" else self.depth_first(self.start, exprs)
        except GaveUp:
            hit, self.cut = None, True
        else:
            self.cut = False
            if hit is None:  # the search ran out of moves: it must say so
                with pytest.raises(GaveUp):
                    self.next()
        assert self.pos == len(self.lines), f"lines after the search ended: {self.lines[self.pos:]}"
        return hit


def problems(n=200, seed=5):
    return traces.make_problems("countdown", n, seed=seed, count="3-4")


# --- tests ---


def test_the_rules_here_are_the_modules():
    assert countdown_search.PROCEDURES == PROCEDURES and countdown_search.BEAM_WIDTH == BEAM
    assert countdown_search.MAX_VALUE == 1000


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_every_search_replays_and_its_dead_ends_are_dead(procedure):
    found = dead_ends = backs = 0
    for p in problems():
        numbers, target = p.meta["numbers"], p.meta["target"]
        s = countdown_search.search(numbers, target, procedure, traces.COUNTDOWN_MAX_CHARS)
        assert s.procedure == procedure and len(s.trace) <= traces.COUNTDOWN_MAX_CHARS
        replay = Replay(s.trace, numbers, target)
        assert replay.procedure in (procedure, None)
        hit = replay.run()
        assert hit == s.answer, (p.question, s.trace)
        if hit is not None:
            found += 1
            assert check(p, hit).ok, (p.question, hit)
        else:  # gave up: out of room mid-search, or (the beam only) out of moves
            assert replay.cut == s.capped and (s.capped or procedure == "beam"), s.trace
        dead_ends += replay.dead_ends
        backs += sum(line.lstrip().startswith("back [") for line in s.trace.splitlines())
    assert found >= 100  # within the cap most problems are solved by each procedure...
    assert dead_ends >= 100  # ...and the searches show their dead ends, not only the way out
    if procedure != "beam":
        assert backs >= 100


def test_training_traces_replay_and_end_in_an_answer_the_grader_accepts():
    seen = Counter()
    for p in problems(300, seed=6):
        try:
            trace, answer = traces.worked_solution(p)
        except traces.NoTrace:
            assert len(p.meta["numbers"]) == 4  # every 3-number problem fits the cap
            continue
        text = traces.completion(p)
        assert text == format.completion_text(trace, answer) and text.endswith(f"Answer: {answer}")
        assert " " not in answer  # one "word": extract_answer keeps it whole
        assert Replay(trace, p.meta["numbers"], p.meta["target"]).run() == answer
        assert check(p, answer).ok and verify(p, text).ok
        # prompt + completion + EOS fit the lab models' 1024 positions (one token per character)
        assert len(format.prompt_text(p.question)) + len(text) + 1 <= 1024
        seen[trace.split(" ", 1)[0], len(p.meta["numbers"])] += 1
    # every procedure writes traces for both sizes (a failed one falls back to the next)
    assert all(seen[proc, n] >= 5 for proc in PROCEDURES for n in (3, 4)), seen


def test_the_procedure_comes_from_the_problem_id_and_traces_are_reproducible():
    ps = problems(40)
    assert [traces.procedure_for(p.id) for p in ps] == [traces.procedure_for(p.id) for p in ps]
    assert set(traces.procedure_for(p.id) for p in ps) == set(PROCEDURES)
    rows = traces.examples("countdown", 40, seed=5, count="3-4")
    assert rows == traces.examples("countdown", 40, seed=5, count="3-4")
    assert rows != traces.examples("countdown", 40, seed=6, count="3-4")
    for p in ps:  # the procedure it names is its own, or the first one after it that succeeds
        if traces.has_trace(p):
            named = traces.countdown_search_for(p).procedure
            start = PROCEDURES.index(traces.procedure_for(p.id))
            later = [PROCEDURES[(start + k) % 4] for k in range(4)]
            for proc in later[: later.index(named)]:
                assert countdown_search.search(p.meta["numbers"], p.meta["target"], proc,
                                               traces.COUNTDOWN_MAX_CHARS).answer is None  # fmt: skip


def test_the_replay_rejects_traces_that_are_not_the_search():
    s = countdown_search.search([3, 7, 50], 46, "dfs", 1000)
    lines = s.trace.splitlines()
    wrong = [
        lines[:1] + lines[4:],  # straight to the move that works: an oracle's trace
        lines[:2] + lines[3:],  # a dead end skipped
        lines[:2] + [" 57+3=60 57-3=54 57*3=171 no"] + lines[3:],  # an enumeration cut short
        lines[:4] + ["50-7=44 [44 3|46]", " 44+3=47 44-3=41 44*3=132 44/3=14 no"],  # arithmetic
        lines[:4] + ["50+7=57 [57 3|46]"] + lines[2:],  # a move tried twice
        lines[:3] + lines[4:],  # a dead end left without its backtrack
        lines[:-1] + [" 43+3=46 no"],  # a hit missed
    ]
    for trace in wrong:
        with pytest.raises(AssertionError):
            Replay("\n".join(trace), [3, 7, 50], 46).run()
    near = countdown_search.search([3, 7, 50], 46, "near", 1000).trace.splitlines()
    assert near[2] == "50-3=47 [47 7|46]"  # 47 is nearest 46; a different visit order fails
    with pytest.raises(AssertionError):
        Replay("\n".join(near[:2] + ["50-7=43 [43 3|46]", " 43+3=46 ok"]), [3, 7, 50], 46).run()
    assert Replay(s.trace, [3, 7, 50], 46).run() == "(50-7)+3"


def test_a_capped_search_is_a_prefix_of_the_full_one_and_gives_up():
    (p,) = [q for q in problems(60) if len(q.meta["numbers"]) == 4][:1]
    numbers, target = p.meta["numbers"], p.meta["target"]
    full = countdown_search.search(numbers, target, "dfs", 10**6)
    short = countdown_search.search(numbers, target, "dfs", 60)
    assert short.capped and short.answer is None and len(short.trace) <= 60
    lines = short.trace.splitlines()
    assert lines[-1] == "give up" and full.trace.startswith("\n".join(lines[:-1]))


def test_a_worked_example():
    s = countdown_search.search([3, 7, 50], 46, "dfs", 1000)
    assert s.trace == "\n".join([
        "dfs [50 7 3|46]",
        "50+7=57 [57 3|46]",
        " 57+3=60 57-3=54 57*3=171 57/3=19 no",
        "back [50 7 3|46]",
        "50-7=43 [43 3|46]",
        " 43+3=46 ok",
    ]) and s.answer == "(50-7)+3"  # fmt: skip
    assert countdown_search.search([3, 7, 46], 46, "near", 1000).trace == ""  # nothing to search


# --- the problems: sizes mixed in one task, and a held-out split ---


def test_count_range_mixes_sizes_and_single_counts_are_unchanged():
    mixed = load_problems("countdown", limit=100, seed=0, count="3-4")
    assert Counter(len(p.meta["numbers"]) for p in mixed).keys() == {3, 4}
    assert all(check(p, p.answer).ok for p in mixed)
    targets = [p.meta["target"] for p in mixed]
    assert min(targets) < 50 and max(targets) > 300  # small and large targets
    # count=3 / count=4 are the same problems as before ranges existed
    (first,) = load_problems("countdown", limit=1, seed=0, count=3)
    assert first.question == (
        "Using the numbers 5, 25, 100 (each at most once) and + - * /, write an expression equal to 95."
    )
    same = lambda a, b: load_problems("countdown", limit=5, count=a) == load_problems("countdown", limit=5, count=b)  # noqa: E731
    assert same(3, "3") and same(4, "4-4")


def test_split_test_shares_no_question_with_lab_training():
    train = traces.make_problems("countdown", 2000, seed=0, count="3-4")
    held_out = load_problems("countdown", limit=200, seed=0, count="3-4", split="test")
    assert {p.meta["split"] for p in train} == {"train"}
    assert all(split_of(p.question) == "train" for p in train)
    assert not {p.question for p in train} & {p.question for p in held_out}
    # the split filters the seed's sequence: the same problems, ids and all, as without it
    everything = {p.id: p for p in load_problems("countdown", limit=3000, seed=0, count="3-4")}
    assert all(everything[p.id].question == p.question for p in held_out)
    share = sum(split_of(p.question) == "test" for p in everything.values()) / len(everything)
    assert 0.05 < share < 0.15


def test_bad_count_ranges_and_splits_are_one_line_errors():
    import argparse

    from ponder.lab.cli import count_option
    from ponder.problems import ProblemSetError

    for options, message in (
        ({"count": "2-4"}, "option count takes a whole number from 3 to 5"),
        ({"count": "4-3"}, "a range runs low-high"),
        ({"split": "dev"}, "option split takes train or test"),
        ({"colour": 1}, "its options are count, split"),
    ):
        with pytest.raises(ProblemSetError, match=message):
            load_problems("countdown", limit=2, **options)
    assert count_option("4") == 4 and count_option("3-4") == "3-4"
    with pytest.raises(argparse.ArgumentTypeError):
        count_option("three")
