"""The bench runner, its CLI and its resumability."""

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from ponder.think import StrategySpecError, parse_strategy
from ponder.budget import Budget
from ponder.bench.cli import parse_budgets, split_strategies
from ponder.bench.report import write_report
from ponder.bench.runner import grid, run_local
from ponder.bench.store import Store
from ponder.models import ScriptedModel
from ponder.problems import load_problems


def arith_solver(request, i):
    """Right on additions, off by one on multiplications: a model that is right sometimes."""
    q = request.messages[-1]["content"]
    a, op, b = re.search(r"(\d+) ([+*×x]) (\d+)", q).groups()
    value = int(a) + int(b) if op == "+" else int(a) * int(b) + 1
    return f"Let me compute. The result is {value}.\n\\boxed{{{value}}}"


def test_split_strategies_and_budgets():
    assert split_strategies(["cot,vote:n=4"]) == ["cot", "vote:n=4"]
    assert split_strategies(["vote:n=8,temperature=0.5,cot", "vote"]) == [
        "vote:n=8,temperature=0.5", "cot", "vote"
    ]
    # a value holding a colon stays with its spec
    assert split_strategies(["beam:beams=2,verifier=prm:/m/prm,cot"]) == [
        "beam:beams=2,verifier=prm:/m/prm", "cot"
    ]
    assert parse_budgets("500, 2000") == [Budget(500), Budget(2000)]
    assert parse_budgets(None) == [Budget()]
    for bad in ("0", "-5", "abc", "1.5", ""):
        with pytest.raises(ValueError):
            parse_budgets(bad)


def test_run_local_grades_stores_and_resumes(tmp_path):
    problems = load_problems("arith", limit=6, seed=3, op="mix")
    store = Store(tmp_path / "r.sqlite")
    store.open_run("t", {"task": "arith", "model": "scripted"}, "test", {})
    cells = grid(problems, [parse_strategy("cot"), parse_strategy("vote:n=3")], [Budget(), Budget(400)], [0])
    model = ScriptedModel(arith_solver)
    asyncio.run(run_local("t", cells, model, store.add, concurrency=3))
    rows = store.rows("t")
    assert len(rows) == len(cells) == 6 * 2 * 2
    for row in rows:
        problem = next(p for p in problems if p.id == row.problem_id)
        assert row.correct == ("+" in problem.question)  # the scripted model errs on products
        assert row.calls == 1 and row.prompt_tokens > 0 and row.completion_tokens > 0
        if row.budget:
            assert row.prompt_tokens + row.completion_tokens <= row.budget
    # resume: nothing left to do
    done = store.done("t")
    assert [c for c in cells if c.key not in done] == []
    calls_before = len(model.requests)
    todo = [c for c in grid(problems, [parse_strategy("cot"), parse_strategy("vote:n=3"), parse_strategy("vote:n=5")], [Budget()], [0]) if c.key not in done]
    asyncio.run(run_local("t", todo, model, store.add))
    assert len(model.requests) - calls_before == len(problems)  # only the new strategy ran
    assert len(store.rows("t")) == 6 * 2 * 2 + 6


def test_a_strategy_spec_cannot_set_the_seed_that_a_cell_takes_from_the_run():
    problems = load_problems("arith", limit=3, seed=3)
    # the cell's seed would replace the spec's, and its row would be found stored under seed 0
    with pytest.raises(StrategySpecError, match="seed=3 cannot be set"):
        grid(problems, [parse_strategy("cot"), parse_strategy("vote:n=3,seed=3")], [Budget()], [0])
    # the run's seeds draw other samples: a cell each
    cells = grid(problems, [parse_strategy("vote:n=3")], [Budget()], [0, 3])
    assert len({c.key for c in cells}) == 6 and {c.seeded().seed for c in cells} == {0, 3}


def test_report_from_a_tiny_run(tmp_path):
    problems = load_problems("arith", limit=8, seed=1, op="mix")
    store = Store(tmp_path / "r.sqlite")
    store.open_run("tiny", {"task": "arith", "model": "scripted"}, "test", {})
    cells = grid(problems, [parse_strategy("cot"), parse_strategy("vote:n=4")], [Budget()], [0])
    asyncio.run(run_local("tiny", cells, ScriptedModel(arith_solver), store.add))
    paths = write_report(store, ["tiny"], tmp_path / "out")
    md = paths.markdown.read_text()
    assert "cot" in md and "vote:n=4" in md and "95%" in md
    assert paths.plots and paths.plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths.html.read_text().count("<table") >= 1


def ponder(*args, timeout=300, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "ponder", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--task", "gsm9k", "--strategy", "cot"], "unknown task"),
        (["--task", "gsm8k", "--data", "/no/such.jsonl", "--strategy", "cot"], "/no/such.jsonl"),
        (["--task", "arith", "--strategy", "vote:n=zero"], "vote"),
        (["--task", "arith", "--strategy", "tree_of_magic"], "unknown strategy"),
        (["--task", "arith", "--strategy", "cot", "--budget", "abc"], "--budget"),
        (["--task", "arith", "--strategy", "cot", "--budget", "0"], "--budget"),
        (["--task", "arith", "--strategy", "cot", "--limit", "0"], "--limit"),
        (["--task", "arith", "--strategy", "cot", "--model", "gguf:/no/model.gguf"], "not found"),
        # a spec's seed would be replaced by the cell's, and its row found stored under seed 0
        (["--task", "arith", "--strategy", "cot,vote:n=4,seed=3"], "seed=3 cannot be set"),
    ],
)
def test_bench_bad_input_is_one_line_before_any_work(tmp_path, args, fragment):
    db = tmp_path / "db.sqlite"
    proc = ponder("bench", *args, "--db", str(db))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not db.exists()  # nothing started


def test_bench_wrong_field_mapping(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text('{"prompt": "1+1?", "solution": "#### 2"}\n')
    proc = ponder("bench", "--task", "gsm8k", "--data", str(f), "--strategy", "cot", "--db", str(tmp_path / "d"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "question" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_kill_9_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    db = tmp_path / "runs.sqlite"
    args = ["bench", "--task", "arith", "--limit", "12", "--strategy", "cot:max_tokens=24",
            "--concurrency", "1", "--db", str(db), "--run", "killme"]
    proc = subprocess.Popen([sys.executable, "-m", "ponder", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count():
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as c:
                return c.execute("select count(*) from results").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    deadline = time.time() + 240
    while count() < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        before = dict(c.execute("select problem_id, created from results").fetchall())
    assert 3 <= len(before) < 12, "the kill should land in the middle of the run"
    done = ponder(*args)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as c:
        after = c.execute("select problem_id, created from results").fetchall()
        assert c.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert len(after) == len({p for p, _ in after}) == 12  # every cell once
    assert all(dict(after)[p] == t for p, t in before.items())  # finished rows untouched
    report = ponder("report", "killme", "--db", str(db), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "rep" / "report.md").exists()


def test_bench_refuses_to_resume_a_strategy_whose_defaults_changed(tmp_path):
    """The stored settings of `cot` say max_tokens=64, as if an older ponder's default had been
    64: the same spec would now run with 512, and the run says so in one line instead of adding
    rows made otherwise under the same label."""
    import json

    db = tmp_path / "db.sqlite"
    args = ["bench", "--task", "arith", "--limit", "1", "--strategy", "cot", "--db", str(db),
            "--run", "r"]
    first = ponder(*args)
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as c:
        config = json.loads(c.execute("select config from runs").fetchone()[0])
        assert config["settings"]["cot"]["max_tokens"] == "512"
        config["settings"]["cot"]["max_tokens"] = "64"
        c.execute("update runs set config = ?", (json.dumps(config),))
    again = ponder(*[("2" if a == "1" else a) for a in args])  # one problem more to run
    assert again.returncode != 0 and "Traceback" not in again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "max_tokens=64 then, 512 now" in lines[0], again.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("select count(*) from results").fetchone()[0] == 1  # nothing ran
