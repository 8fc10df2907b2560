"""benchmarks/countdown_traces.py --db: what the stored solves of a run look like (searches that
back out of a dead end, sound ones, ones that skip the search), counted on the text each row chose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ponder.bench.store import ResultRow, Store
from ponder.lab import countdown_search, format
from ponder.problems import load_problems

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "countdown_traces.py"


def _row(problem, text: str, answer: str, correct: bool, strategy: str = "beam:floor=1") -> ResultRow:
    trace = [
        {"type": "Sampled", "sample": 0, "text": "Answer: 1+1", "answer": "1+1"},  # not chosen
        {"type": "Sampled", "sample": 1, "text": text, "answer": answer},
    ]
    return ResultRow("r", problem.id, strategy, 0, 0, answer, problem.answer, correct, trace=trace)


def test_counts_backs_and_sound_solves_on_the_chosen_texts(tmp_path):
    problems = load_problems("countdown", limit=40, seed=10_000, count="3-4", split="test")
    searches = [(p, countdown_search.search(p.meta["numbers"], p.meta["target"], "dfs", 860))
                for p in problems]  # fmt: skip
    with_back = [(p, s) for p, s in searches if s.answer and "\nback " in s.trace]
    (a, sa), (b, sb) = with_back[:2]
    c = next(p for p, s in searches if p not in (a, b))
    slipped = sb.trace.replace("=", "=1", 1)  # a slip on the first move: right answer, unsound
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        store.open_run("r", {"limit": 3}, "test", {})
        store.add(_row(a, format.completion_text(sa.trace, sa.answer), sa.answer, True))
        store.add(_row(b, format.completion_text(slipped, sb.answer), sb.answer, True))
        store.add(_row(c, "Answer: 2+2", "2+2", False))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), "--limit", "40"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| r, beam:floor=1 | 2 of 3 | 2 | 2 | 1 | 0 |" in proc.stdout


def test_a_missing_database_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(tmp_path / "none.sqlite")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no such database")
    assert not (tmp_path / "none.sqlite").exists()
