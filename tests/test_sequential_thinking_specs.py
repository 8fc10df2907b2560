"""benchmarks/sequential_thinking.py --strategy SPEC: a spec given alone measures what the full
run's row of that strategy measures (the task's shared budget and temperature), so it also resumes
from that row's stored cells; a bad spec is a one-line error."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from ponder.think import parse_strategy

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sequential_thinking.py"
spec = importlib.util.spec_from_file_location("sequential_thinking", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def canonical(text: str) -> str:
    return parse_strategy(text).spec


def test_a_spec_given_alone_runs_as_the_tables_row():
    specs, shared = bench.strategies_for("countdown")
    row = next(s for s in specs if s.startswith("best_of_n:"))
    alone = bench.with_task_settings("best_of_n:n=16,verifier=check", specs, shared)
    assert canonical(alone) == canonical(row)
    assert parse_strategy(alone).max_tokens == 900 and parse_strategy(alone).temperature == 0.8
    # every row of the table, cut to its name and own options, comes back to itself
    for row in specs:
        name, _, params = row.partition(":")
        own = ",".join(p for p in params.split(",") if p and p not in shared)
        bare = name + (":" + own if own else "")
        assert canonical(bench.with_task_settings(bare, specs, shared)) == canonical(row), row


def test_settings_the_spec_names_win_and_unlisted_strategies_stay_as_written():
    specs, shared = bench.strategies_for("countdown")
    mine = bench.with_task_settings("vote:n=8,max_tokens=256", specs, shared)
    assert parse_strategy(mine).max_tokens == 256 and parse_strategy(mine).temperature == 0.8
    assert bench.with_task_settings("cot:max_tokens=900", specs, shared) == "cot:max_tokens=900"
    arith, arith_shared = bench.strategies_for("arith")
    assert "confidence" not in " ".join(arith)
    assert bench.with_task_settings("confidence", arith, arith_shared) == "confidence"


def test_a_bad_spec_is_a_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--strategy", "vote:n=many", "--db", str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "many" in proc.stderr.splitlines()[-1]


def test_auto_is_placed_against_the_frontier_of_the_strategies_stored_beside_it():
    """The shipped model's figures: alone with cot and confidence, auto (26.5% at 3,710 tokens) is
    2.0 points under cot; with reflect (33.0% at 1,241) stored too, it is 6.5 under. The line says
    how many strategies it compared with, so a partial database is not read as the whole table."""
    from types import SimpleNamespace as Row

    auto = Row(label="auto", accuracy=0.265, mean_tokens=3710)
    cot = Row(label="cot", accuracy=0.285, mean_tokens=368)
    confidence = Row(label="confidence", accuracy=0.245, mean_tokens=4825)
    reflect = Row(label="reflect", accuracy=0.33, mean_tokens=1241)
    alone = bench.auto_against_frontier(auto, [cot, confidence], "a.sqlite")
    assert "2 other strategies in a.sqlite" in alone
    assert "2.0 points below it (within 2 points)" in alone
    full = bench.auto_against_frontier(auto, [cot, confidence, reflect], "all.sqlite")
    assert "3 other strategies" in full and "33.0% (reflect)" in full
    assert "6.5 points below it." in full
    cheap = bench.auto_against_frontier(Row(label="auto", accuracy=0.2, mean_tokens=100), [cot], "a")
    assert "cheaper than every other strategy" in cheap


def test_bad_numbers_paths_and_models_are_one_line_errors_before_any_work(tmp_path):
    """Each was a traceback: --limit 0 from the problem loader, --threads 0 from torch, a model
    that does not exist, a --db that is not SQLite, an --out that is a file (after every cell ran,
    when the report was written)."""
    (tmp_path / "file").write_text("x\n")
    db, out = str(tmp_path / "s.sqlite"), str(tmp_path / "report")
    cases = [
        (["--limit", "0"], "--limit: must be a positive integer"),
        (["--limit", "-3"], "--limit: must be a positive integer"),
        (["--threads", "0"], "--threads: must be a positive integer"),
        (["--model", "lab:nope"], "--model: no shipped lab checkpoint 'nope'"),
        (["--model", f"hf:{tmp_path / 'none'}"], "--model: cannot load Hugging Face model"),
        (["--db", str(tmp_path / "file")], "not a results database"),
        (["--db", str(tmp_path / "file" / "s.sqlite")], "is a file, so nothing can be made in it"),
        (["--db", str(tmp_path)], "is a folder; --db is the results database file"),
        (["--out", str(tmp_path / "file")], "is a file; --out is the folder"),
    ]
    for args, why in cases:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--strategy", "cot:max_tokens=8", "--limit", "1",
             "--threads", "1", "--db", db, "--out", out, *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and why in proc.stderr.splitlines()[-1], args
        assert "cells to run" not in proc.stderr, args  # refused before any cell ran


def test_a_run_says_how_far_it_is_and_a_rerun_finds_every_cell_stored(tmp_path):
    db = tmp_path / "s.sqlite"
    argv = [sys.executable, str(SCRIPT), "--strategy", "cot", "--limit", "3", "--threads", "1",
            "--db", str(db), "--out", str(tmp_path / "report")]  # fmt: skip
    first = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "3 cells to run (0 stored)" in first.stderr
    assert re.search(r"^  3/3 cells, \d+ s$", first.stderr, re.M), first.stderr[-2000:]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 cells to run (3 stored)" in again.stderr


def test_ctrl_c_keeps_the_finished_cells_and_says_the_same_command_resumes(tmp_path):
    import signal
    import sqlite3
    import time

    db = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--strategy", "vote:n=4", "--limit", "40", "--threads", "1",
         "--concurrency", "1", "--db", str(db), "--out", str(tmp_path / "report")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def stored() -> int:
        try:
            with sqlite3.connect(db) as con:
                return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error:  # not made yet
            return 0

    while stored() == 0 and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    kept = stored()
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.splitlines()[-1] == (f"interrupted: {kept} of 40 cells stored in {db}; the same "
                                    "command resumes")  # fmt: skip
    assert 0 < kept < 40
