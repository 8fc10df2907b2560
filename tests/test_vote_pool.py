"""benchmarks/vote_pool.py: what a stored pool of samples holds for voting, read back from a
results database and graded again (no model runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_replay_stopping import _row, replay

from ponder.bench.store import Store

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "vote_pool.py"


def test_a_pool_is_graded_sample_by_sample_and_voted_two_ways(tmp_path):
    a, b, c = replay.held_out("countdown", 3, 0, 3)
    right = lambda p: p.answer.replace(" ", "")  # noqa: E731
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        store.open_run("r", {"limit": 3}, "test", {})
        # a (100, 4, 25 to 129): one right answer written three ways, one key, against a wrong
        # one written twice alike: the vote by text picks the wrong one, the strategies' not
        assert (a.meta["numbers"], a.meta["target"]) == ([4, 25, 100], 129)
        store.add(_row(a, ["(100+4)+25", "1+1", "1+1", "25+(4+100)", "100+(25+4)"]))
        store.add(_row(b, ["2+2", "2+2", right(b), "", "3+3"]))  # "" states no answer
        store.add(_row(c, ["4+4"] * 5))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), "--strategy", "best_of_n"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = re.search(r"^\| best_of_n:n=8 \| (.+) \|$", proc.stdout, re.M).group(1).split(" | ")
    # 4 of the 15 samples are right (3 of a, 1 of b), 2 of 3 puzzles have one; the vote by text is
    # right on none, the vote by the strategies' keys on a; the 4 right samples are 2 distinct
    # answers
    assert row == ["3", "26.7%", "66.7%", "0.0%", "33.3%", "1 of 15", "4 / 2", "10 / 4"], row
