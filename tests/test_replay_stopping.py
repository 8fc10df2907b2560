"""benchmarks/replay_stopping.py: adaptive's stopping rule and the give-up rule, replayed on the
samples a stored run drew, stop where the rules say and grade the vote of what they drew."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from ponder.bench.store import ResultRow, Store

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "replay_stopping.py"
spec = importlib.util.spec_from_file_location("replay_stopping", SCRIPT)
replay = importlib.util.module_from_spec(spec)
spec.loader.exec_module(replay)


def _row(problem, answers: list[str]) -> ResultRow:
    trace = [{"type": "Sampled", "sample": str(i), "text": f"Answer: {a}", "answer": a,
              "completion_tokens": "10", "finish_reason": "stop"} for i, a in enumerate(answers)]  # fmt: skip
    return ResultRow("r", problem.id, "best_of_n:n=8", 0, 0, None, problem.answer, False, trace=trace)


def _stored(tmp_path: Path, rows: list[ResultRow]) -> Path:
    """A sequential_thinking.py database of one run (3 problems) holding ``rows``."""
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        store.open_run("r", {"limit": 3}, "test", {})
        for row in rows:
            store.add(row)
    return db


def test_replay_stops_where_each_rule_says(tmp_path):
    a, b, c = replay.held_out("countdown", 3, 0, 3)
    right = lambda p: p.answer.replace(" ", "")  # noqa: E731
    wrong = ["1+1", "2+2", "3+3", "4+4", "5+5", "6+6", "7+7", "8+8"]
    db = _stored(tmp_path, [
        _row(a, [right(a)] * 4),  # four agree: settled after the first wave
        _row(b, wrong[:4] + [right(b)] * 4),  # first wave all differ, then the answer
        _row(c, wrong),  # never two alike
    ])  # fmt: skip
    proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), "--give-up", "4"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = dict(re.findall(r"^\| (.+?) \| ([\d.]+% \| [\d,]+) \|", proc.stdout, re.M))
    # b after 8: 4 votes to 1 is P = 57/64 < 0.95, so adaptive draws all that c and b hold
    assert table["vote over all 8"] == "66.7% | 67"
    assert table["adaptive (wave 4, 0.95)"] == "66.7% | 67"
    assert table["adaptive + give up after 4 with no answer twice"] == "33.3% | 40"


def test_replay_of_a_missing_or_empty_database_is_one_line(tmp_path):
    for name, why in (("none.sqlite", "no such database"), ("empty.sqlite", "no runs stored")):
        if why == "no runs stored":
            Store(tmp_path / name).close()
        proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 2 and proc.stderr.strip().endswith(why), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_replay_of_sampling_until_the_checker_passes_one(tmp_path):
    a, b, c = replay.held_out("countdown", 3, 0, 3)
    right = lambda p: p.answer.replace(" ", "")  # noqa: E731
    wrong = ["1+1", "2+2", "3+3", "4+4", "5+5", "6+6", "7+7", "8+8"]
    db = _stored(tmp_path, [
        _row(a, [right(a)] + wrong[:7]),  # the first wave holds it
        _row(b, wrong[:5] + [right(b)] + wrong[:2]),  # the second wave does
        _row(c, wrong),  # none
    ])  # fmt: skip
    proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), "--checker", "check"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = dict(re.findall(r"^\| (.+?) \| ([\d.]+% \| [\d,]+) \|", proc.stdout, re.M))
    assert table["waves of 4 until one passes"] == "66.7% | 67"  # 4, 8 and 8 samples drawn
    assert table["best of the first 4"] == "33.3% | 40"
    assert table["best of the first 8"] == "66.7% | 80"


def test_a_file_that_is_not_a_database_and_bad_options_are_one_line_errors(tmp_path):
    """Not SQLite (both scripts read it through stored_pools); a wave of 0 samples (it looped for
    ever), a give-up k that is not a number, an unknown checker (a traceback after the table)."""
    a, _, _ = replay.held_out("countdown", 3, 0, 3)
    db = _stored(tmp_path, [_row(a, ["1+1"] * 4)])
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    vote_pool = SCRIPT.with_name("vote_pool.py")
    cases = [
        ([SCRIPT, "--db", text], "not a results database"),
        ([vote_pool, "--db", text, "--strategy", "best_of_n"], "not a results database"),
        ([SCRIPT, "--db", db, "--wave", "0"], "--wave: must be a positive integer"),
        ([SCRIPT, "--db", db, "--wave", "-2"], "--wave: must be a positive integer"),
        ([SCRIPT, "--db", db, "--give-up", "4,x"], "--give-up: each k: 'x' is not an integer"),
        ([SCRIPT, "--db", db, "--checker", "bogus"], "--checker: unknown verifier 'bogus'"),
    ]
    for args, why in cases:
        proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and why in proc.stderr.splitlines()[-1], args
        assert "| rule" not in proc.stdout, args  # refused before any replay
