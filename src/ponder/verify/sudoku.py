"""Grade a mini-sudoku answer: a completed grid that keeps the givens and breaks no rule.

A puzzle is written row by row, rows split by "/", "." for a blank: ``1.3./...2/.1../4..1``
(4x4, boxes 2x2; any n x n with n a perfect square is accepted). The answer is the full grid in the
same form, ``1234/3412/2143/4321``; rows may also be split by spaces, commas, "|" or newlines.
Any valid completion is correct, not only the reference: generated puzzles with many blanks have
several.
"""

from __future__ import annotations

import math
import re

from ponder.verify.score import Score

_SEPARATORS = re.compile(r"[\s/,|]+")


def parse_grid(text: str) -> list[str]:
    """Rows of a puzzle or answer, separators removed: "12.4/3..2" -> ["12.4", "3..2"]."""
    return [row for row in _SEPARATORS.split(str(text).strip().strip("$").strip()) if row]


def check_sudoku(answer: str, puzzle: str) -> Score:
    givens = parse_grid(puzzle)
    n = len(givens)
    box = math.isqrt(n)
    if n < 1 or box * box != n or any(len(row) != n for row in givens):
        raise ValueError(f"malformed sudoku puzzle {puzzle!r}")
    digits = "".join(str(d) for d in range(1, n + 1))
    cells = "".join(parse_grid(answer))
    if len(cells) != n * n or any(c not in digits for c in cells):
        return Score(False, 0.0, f"not a {n}x{n} grid of the digits 1-{n}")
    grid = [cells[r * n : (r + 1) * n] for r in range(n)]
    for r in range(n):
        for c in range(n):
            if givens[r][c] != "." and givens[r][c] != grid[r][c]:
                return Score(False, 0.0, f"changes the given r{r + 1}c{c + 1}={givens[r][c]}")
    groups = [(f"row {r + 1}", grid[r]) for r in range(n)]
    groups += [(f"column {c + 1}", "".join(grid[r][c] for r in range(n))) for c in range(n)]
    for b in range(n):
        r0, c0 = box * (b // box), box * (b % box)
        cells_b = "".join(grid[r][c] for r in range(r0, r0 + box) for c in range(c0, c0 + box))
        groups.append((f"box {b + 1}", cells_b))
    for name, group in groups:
        if len(set(group)) != n:
            twice = next(d for d in group if group.count(d) > 1)
            return Score(False, 0.0, f"{name} repeats {twice}")
    return Score(True, 1.0, "a valid completion")
