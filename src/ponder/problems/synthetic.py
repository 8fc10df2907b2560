"""Generated problem sets: ``arith`` (long addition / multiplication), ``countdown`` and ``sudoku``.

All are seeded with ``random.Random(seed)``: the same seed and options give the same problems,
in the same order, with the same ids. ``limit`` is how many to generate (default 100).

Every generator takes ``split=train`` or ``split=test``: a stable hash of the question puts one
problem in ten in the test split, the rest in train, and the split keeps only its own problems of
the seed's sequence (same ids as without a split). Problems of the two splits never share a
question, whatever the seeds and sizes: a test set of ``split=test`` is held out from training on
``split=train`` by construction, where filtering by seed alone cannot promise it (small spaces
such as 3-number countdown, ~5,000 distinct puzzles, repeat across seeds).

``countdown`` follows the TV game loosely: a few small (1-10) and large (25, 50, 75, 100) numbers
and a target. Every puzzle is solvable by construction: we combine the numbers at random with
+ - * /, keeping each intermediate value a positive integer, and the final value is the target;
the expression built is stored as the reference answer. Unlike the game, the target is not
drawn first, and the reference uses every number (a solver may use fewer). ``count`` is how many
numbers (3-5, default 4) or a range, ``count=3-4``: each puzzle then draws its size, so one set
mixes easy and hard puzzles.

``sudoku`` is a 4x4 mini sudoku (2x2 boxes): one of the 288 valid grids, drawn uniformly, with
``blanks`` cells emptied. Puzzles with many blanks can have several solutions; the grader accepts
any valid completion (``verify.sudoku``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.errors import ProblemSetError

DEFAULT_COUNT = 100
SPLITS = ("train", "test")
TEST_SHARE = 10  # one problem in TEST_SHARE is in the test split
_SMALL = list(range(1, 11))
_LARGE = [25, 50, 75, 100]


def _int_option(name: str, value: Any, low: int, high: int) -> int:
    """Options arrive as ints from Python and as strings from the command line."""
    n = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value)
    if n is None or not low <= n <= high:
        raise ProblemSetError(
            f"option {name} takes a whole number from {low} to {high}; got {value!r}"
        )
    return n


def make_arith(
    rng: random.Random, index: int, digits: int = 3, op: str = "add"
) -> tuple[str, str, dict]:
    """One sum or product of two ``digits``-digit numbers: (question, answer, meta)."""
    low, high = 10 ** (digits - 1), 10**digits - 1
    a, b = rng.randint(low, high), rng.randint(low, high)
    if op == "mix":
        op = rng.choice(["add", "mul"])
    symbol, value = ("+", a + b) if op == "add" else ("*", a * b)
    return f"Compute {a} {symbol} {b}.", str(value), {"a": a, "b": b, "op": op}


def make_countdown(
    rng: random.Random, index: int, count: int | str = 4
) -> tuple[str, str, dict]:
    """A countdown puzzle with ``count`` numbers (or a size drawn from a range "3-4") and a target
    in 10..999 when one turns up within a few tries (large products are redrawn): (question,
    reference expression, meta)."""
    if isinstance(count, str):  # a range, checked by _countdown_options
        low, high = map(int, count.split("-"))
        count = rng.randint(low, high)
    for _ in range(50):
        n_large = rng.randint(1, min(2, count - 1))
        numbers = rng.sample(_LARGE, n_large) + [rng.choice(_SMALL) for _ in range(count - n_large)]
        target, expr = _combine(rng, numbers)
        if 10 <= target <= 999:
            break
    shown = sorted(numbers)
    return countdown_question(shown, target), expr, {"numbers": shown, "target": target}


def countdown_question(numbers: list[int], target: int) -> str:
    """The countdown puzzles' wording (the lab models are trained on it; ``countdown_meta`` reads
    it back)."""
    return (
        f"Using the numbers {', '.join(map(str, numbers))} (each at most once) and + - * /, "
        f"write an expression equal to {target}."
    )


_COUNTDOWN_QUESTION = re.compile(
    r"Using the numbers (\d{1,9}(?:, \d{1,9})+) \(each at most once\) and \+ - \* /, "
    r"write an expression equal to (\d{1,9})\.?"
)


def countdown_meta(question: str) -> dict[str, Any] | None:
    """``{"numbers", "target"}`` of a question in ``countdown_question``'s wording, else None."""
    m = _COUNTDOWN_QUESTION.fullmatch(question.strip())
    if m is None:
        return None
    return {"numbers": sorted(int(n) for n in m.group(1).split(", ")), "target": int(m.group(2))}


def _combine(rng: random.Random, numbers: list[int]) -> tuple[int, str]:
    """Fold ``numbers`` into one expression, two items at a time, every step a positive integer."""
    items = [(n, str(n)) for n in numbers]
    while len(items) > 1:
        a, ea = items.pop(rng.randrange(len(items)))
        b, eb = items.pop(rng.randrange(len(items)))
        if a < b:
            (a, ea), (b, eb) = (b, eb), (a, ea)
        choices = [("+", a + b), ("*", a * b)]
        if a > b:
            choices.append(("-", a - b))
        if b > 1 and a % b == 0:
            choices.append(("/", a // b))
        symbol, value = rng.choice(choices)
        items.append((value, f"{_wrap(ea)} {symbol} {_wrap(eb)}"))
    return items[0]


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


def make_sudoku(rng: random.Random, index: int, blanks: int = 8) -> tuple[str, str, dict]:
    """A 4x4 sudoku with ``blanks`` empty cells: (question, a solution, meta with the puzzle)."""
    grid = rng.choice(_sudoku_grids())
    cells = list("".join(grid))
    for i in rng.sample(range(16), blanks):
        cells[i] = "."
    puzzle = "/".join("".join(cells[r * 4 : r * 4 + 4]) for r in range(4))
    question = (
        f"Fill in the 4x4 sudoku {puzzle} (rows split by /, . is blank; "
        "every row, column and 2x2 box holds 1-4)."
    )
    return question, "/".join(grid), {"puzzle": puzzle}


@functools.cache
def _sudoku_grids() -> tuple[tuple[str, ...], ...]:
    """All 288 valid 4x4 grids, rows as strings, in lexicographic order."""
    rows = ["".join(p) for p in itertools.permutations("1234")]
    grids = []
    for grid in itertools.product(rows, repeat=4):
        cols_ok = all(len({row[c] for row in grid}) == 4 for c in range(4))
        boxes_ok = all(
            len({grid[r][c] for r in (r0, r0 + 1) for c in (c0, c0 + 1)}) == 4
            for r0 in (0, 2) for c0 in (0, 2)
        )
        if cols_ok and boxes_ok:
            grids.append(grid)
    return tuple(grids)


@dataclass(frozen=True)
class Generator:
    name: str
    summary: str
    kind: str
    make: Callable[..., tuple[str, str, dict]]  # (rng, index, **options) -> (q, answer, meta)
    check_options: Callable[[dict[str, Any]], dict[str, Any]]

    def load(
        self,
        data: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        level: str | int | None = None,
        subject: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> list[Problem]:
        if data is not None:
            raise ProblemSetError(f"{self.name} is generated; it reads no data file, drop --data")
        for flag, value in (("level", level), ("subject", subject)):
            if value is not None:
                raise ProblemSetError(f"{self.name} has no {flag} field; drop --{flag}")
        opts = dict(options or {})
        split = opts.pop("split", None)
        if split is not None and split not in SPLITS:
            raise ProblemSetError(f"option split takes train or test; got {split!r}")
        opts = self.check_options(opts)
        wanted = DEFAULT_COUNT if limit is None else limit
        rng = random.Random(seed)
        problems: list[Problem] = []
        i = 0
        while len(problems) < wanted:
            if i >= 1000 * wanted:  # a space of a few questions may have none in a split
                raise ProblemSetError(
                    f"{self.name}: too few problems in split {split}; widen the options"
                )
            question, answer, made = self.make(rng, i, **opts)
            if split is None or split_of(question) == split:
                meta = {"task": self.name, "index": i, "seed": seed, **opts, **made}
                if split is not None:
                    meta["split"] = split
                # The seed is in the id: runs with different seeds are different problems.
                pid = f"{self.name}-s{seed}-{i}"
                problems.append(Problem(pid, question, answer, self.kind, meta))
            i += 1
        return problems


def split_of(question: str) -> str:
    """"test" for one question in ``TEST_SHARE`` (a stable hash, the same on every machine)."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_SHARE == 0 else "train"


def _known_options(name: str, options: dict, known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        known = known | {"split"}  # every generator's, handled by Generator.load
        raise ProblemSetError(
            f"{name} has no option {', '.join(unknown)}; its options are {', '.join(sorted(known))}"
        )


def _arith_options(options: dict[str, Any]) -> dict[str, Any]:
    _known_options("arith", options, {"digits", "op"})
    op = str(options.get("op", "add")).lower()
    if op not in ("add", "mul", "mix"):
        raise ProblemSetError(f"option op of arith takes add, mul or mix; got {options['op']!r}")
    return {"digits": _int_option("digits", options.get("digits", 3), 1, 30), "op": op}


def _countdown_options(options: dict[str, Any]) -> dict[str, Any]:
    _known_options("countdown", options, {"count"})
    count = options.get("count", 4)
    if isinstance(count, str) and "-" in count:  # a range of sizes, "3-4"
        low, _, high = count.partition("-")
        low, high = _int_option("count", low, 3, 5), _int_option("count", high, 3, 5)
        if low > high:
            raise ProblemSetError(f"option count: a range runs low-high, e.g. 3-4; got {count!r}")
        return {"count": f"{low}-{high}" if low < high else low}
    return {"count": _int_option("count", count, 3, 5)}


def _sudoku_options(options: dict[str, Any]) -> dict[str, Any]:
    _known_options("sudoku", options, {"blanks"})
    return {"blanks": _int_option("blanks", options.get("blanks", 8), 1, 16)}


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            "arith",
            "generated sums/products (options: digits=3, op=add|mul|mix)",
            "exact",
            make_arith,
            _arith_options,
        ),
        Generator(
            "countdown",
            "generated countdown puzzles, solvable by construction (option: count=3..5 or 3-4)",
            "countdown",
            make_countdown,
            _countdown_options,
        ),
        Generator(
            "sudoku",
            "generated 4x4 mini sudokus, any valid completion accepted (option: blanks=8)",
            "sudoku",
            make_sudoku,
            _sudoku_options,
        ),
    )
}
