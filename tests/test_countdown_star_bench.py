"""benchmarks/countdown_star.py: which sampled rows one round of STaR trains on (clean solving
searches of the sampled puzzles only), and its arguments."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

from ponder.lab import format, traces
from ponder.problems import load_problems

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
star = importlib.import_module("countdown_star")  # benchmarks/ is scripts, not a package


def _row(problem, completion: str, correct: bool = True) -> dict:
    return {"prompt": format.prompt_text(problem.question), "completion": completion,
            "problem_id": problem.id, "correct": correct}  # fmt: skip


def _puzzles(n: int = 40):
    found = load_problems("countdown", limit=n, seed=3, count="3-4", split="train")
    return [p for p in found if traces.has_trace(p)]


def _slipped(trace: str) -> str:
    """The trace with its first equation's result off by one: a slip, whatever the line."""
    m = re.search(r"(\d+[-+*/]\d+)=(\d+)", trace)
    return trace[: m.start(2)] + str(int(m.group(2)) + 1) + trace[m.end(2) :]


def test_only_clean_solving_searches_of_the_sampled_puzzles_are_kept():
    clean_p, slip_p, wrong_p, other_p = _puzzles()[:4]
    clean = _row(clean_p, traces.completion(clean_p))
    slipped = _row(slip_p, _slipped(traces.completion(slip_p)))
    wrong = _row(wrong_p, traces.completion(wrong_p), correct=False)
    other = _row(other_p, traces.completion(other_p))
    sampled_on = {p.id: p for p in (clean_p, slip_p, wrong_p)}  # not other_p: another run's
    kept, flawed = star.clean_rows([clean, slipped, wrong, other], sampled_on)
    assert kept == [clean]
    assert flawed == 1
    kept, flawed = star.clean_rows([clean, slipped, wrong, other], sampled_on, keep_flawed=True)
    assert kept == [clean, slipped]
    assert flawed == 0


def test_every_generated_search_counts_as_clean():
    """The traces the SFT model was trained on pass the filter: it drops the model's slips, not
    the format (a filter that dropped good searches would leave little to train on)."""
    puzzles = _puzzles(60)
    rows = [_row(p, traces.completion(p)) for p in puzzles]
    kept, flawed = star.clean_rows(rows, {p.id: p for p in puzzles})
    assert (len(kept), flawed) == (len(puzzles), 0)


def test_the_start_model_spec_keeps_lab_names_and_reads_a_directory_as_hf():
    assert star.model_spec("lab:countdown-grpo") == "lab:countdown-grpo"
    assert star.model_spec("runs/x/sft") == "hf:runs/x/sft"
    assert star.model_spec("hf:runs/x/sft") == "hf:runs/x/sft"


def test_help_names_every_setting():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "countdown_star.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    for flag in ("--model", "--problems", "--samples", "--keep-flawed", "--epochs", "--lr"):
        assert flag in out


def test_paired_counts_split_the_solves_by_model():
    from types import SimpleNamespace as Row

    start = [Row(correct=c) for c in (True, True, False, False, True)]
    tuned = [Row(correct=c) for c in (True, False, True, False, True)]
    assert star.solved_by(start, tuned) == {"both": 2, "start": 1, "STaR": 1}


def test_rationalization_gives_each_unsolved_puzzle_the_symbolic_search_trace():
    puzzles = _puzzles()
    solved = [_row(puzzles[0], traces.completion(puzzles[0]))]
    added = star.rationalized(puzzles[:3], solved)
    assert [r["problem_id"] for r in added] == [p.id for p in puzzles[1:3]]
    for row, p in zip(added, puzzles[1:3]):
        assert row["completion"] == traces.completion(p)
        assert row["prompt"] == format.prompt_text(p.question)
    kept, flawed = star.clean_rows(added, {p.id: p for p in puzzles})
    assert (len(kept), flawed) == (2, 0)  # the teacher's rows are clean searches too
