"""benchmarks/countdown_openings.py: greedy answers from each search procedure's opening, the
vote across them and pass@k; the tables by hand, then a short run of the shipped model."""

from __future__ import annotations

import asyncio
import json
import importlib
import sys
from pathlib import Path

import pytest

from ponder.models import resolve
from ponder.problems.base import Problem
from ponder.problems.synthetic import countdown_question

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
openings = importlib.import_module("countdown_openings")  # benchmarks/ is scripts, not a package

PUZZLE = Problem("c", countdown_question([1, 8, 50], 392), None, "countdown",
                 {"numbers": [1, 8, 50], "target": 392})  # fmt: skip


def _answers(*answers: str | None) -> list:
    """One answer per opening, in OPENINGS order (free, dfs, near, big, beam), graded."""
    from ponder.verify.grade import check

    return [openings.Answered(o, f"{o} ...", a, check(PUZZLE, a).ok if a else False, 10)
            for o, a in zip(openings.OPENINGS, answers, strict=True)]  # fmt: skip


def test_the_vote_counts_one_computation_written_two_ways_once_and_pass_at_k_any_right():
    # free and dfs wrong alike; near and beam right, written two ways; big states nothing
    right = _answers("50*8-1", "50*8-1", "(50-1)*8", None, "8*(50-1)")
    wrong = _answers("50*8-1", "50*8-1", "50+8+1", None, "50*8+1")
    assert openings.vote(right, PUZZLE).opening == "free"  # 2 against 2: the first listed
    assert openings.vote(right[1:], PUZZLE).opening == "near"  # procedures only: 2 against 1
    assert openings.vote(_answers(None, None, None, None, None), PUZZLE) is None
    table = openings.summary([(PUZZLE, right), (PUZZLE, wrong)],
                             [openings.PROCEDURES, openings.OPENINGS])  # fmt: skip
    assert "| `near` | 50.0 | 10 | 2 of 2 |" in table
    assert "| `big` | 0.0 | 10 | 0 of 2 |" in table
    assert "| dfs + near + big + beam | 50.0 | 50.0 |" in table
    assert "| free + dfs + near + big + beam | 0.0 | 50.0 |" in table
    # 3 right (two ways of one computation, one key) and 5 wrong, all off the target but
    # "50*8-1" on both puzzles is one distinct wrong answer per puzzle
    assert table.endswith("Answers: 2 right, 6 wrong (6 of them evaluate to a number other than "
                          "the target); 2.00 answers per distinct right answer, 1.50 per distinct "
                          "wrong one.")  # fmt: skip


def test_a_saved_run_is_graded_again_without_a_model(tmp_path):
    puzzles = openings.held_out(3, 0)
    saved = [{"id": p.id, "answers": [
        {"opening": o, "text": "...", "answer": p.answer if o == "near" else "1+1", "tokens": 5}
        for o in openings.OPENINGS]} for p in puzzles]  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps(saved))
    rows = openings.read_back(str(path), puzzles)
    assert [[a.ok for a in answers] for _, answers in rows] == [[False, False, True, False, False]] * 3
    with pytest.raises(SystemExit, match="is not among these --held-out/--seed ones"):
        openings.read_back(str(path), openings.held_out(3, 1))


def test_the_shipped_model_continues_each_opening_it_is_given():
    model = resolve("lab:countdown-grpo")
    rows = asyncio.run(openings.run_all(model, [PUZZLE], max_tokens=24, concurrency=8))
    ((problem, answers),) = rows
    assert problem is PUZZLE and [a.opening for a in answers] == list(openings.OPENINGS)
    for a in answers[1:]:  # each procedure writes the start state after its name
        assert a.text.startswith(f"{a.opening} [50 8 1|392]"), a.text
        assert 0 < a.tokens <= 24
    assert answers[0].text.split(" ", 1)[0] in (*openings.PROCEDURES, "Answer:")
