"""The bench store (SQLite, resumable), the statistics, and the Markdown/HTML/PNG report."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ponder.bench.report import ReportError, write_report
from ponder.bench.stats import mcnemar_exact, paired_difference, pareto_frontier, wilson_interval
from ponder.bench.store import ResultRow, RunMismatchError, Store

SRC = Path(__file__).resolve().parents[1] / "src"
CONFIG = {"task": "gsm8k", "model": "default", "strategies": ["cot"], "budgets": [0], "seeds": [0]}
MODEL = {"backend": "llamacpp", "path": "/models/tiny.gguf", "sha256": "ab12cd34ef56" + "0" * 52}


def row(run="r", pid="p1", strategy="cot", budget=0, seed=0, correct=True, **kw) -> ResultRow:
    return ResultRow(run=run, problem_id=pid, strategy=strategy, budget=budget, seed=seed,
                     answer="42", reference="42", correct=correct, **kw)


# -- store -------------------------------------------------------------------------------------------


def test_open_run_resume_and_mismatch(tmp_path):
    s = Store(tmp_path / "sub" / "bench.db")
    s.open_run("r", CONFIG, "0.1.0", MODEL)
    s.open_run("r", CONFIG, "0.1.0", MODEL)  # same config: fine
    s.open_run("r", {**CONFIG, "strategies": ["vote:n=4"]}, "0.1.0", MODEL)  # adds a strategy: fine
    assert s.run_info("r")["config"]["strategies"] == ["cot", "vote:n=4"]
    with pytest.raises(RunMismatchError, match="math500.*--run"):
        s.open_run("r", {**CONFIG, "task": "math500"}, "0.1.0", MODEL)
    with pytest.raises(RunMismatchError):
        s.open_run("r", {**CONFIG, "model": "gguf:/other.gguf"}, "0.1.0", MODEL)
    assert s.runs() == ["r"]
    assert s.run_info("nope") is None
    assert s.run_info("r")["model"]["sha256"] == MODEL["sha256"]


def test_a_file_that_is_not_a_results_database_is_a_users_error_and_left_as_it_was(tmp_path):
    """``--db notes.txt`` was an sqlite3 traceback; another program's SQLite file got ponder's
    tables added to it."""
    import sqlite3

    from ponder.errors import UserError

    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    inside_a_file = notes / "results.sqlite"
    for path, says in ((notes, "not a results database"), (other, "not one of ponder's"),
                       (inside_a_file, "not a results database"), (tmp_path, "not a results database")):  # fmt: skip
        with pytest.raises(UserError, match=says):
            Store(path)
    assert notes.read_text() == "hello\n"
    with sqlite3.connect(other) as c:
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["t"]
    with Store(tmp_path / "new.sqlite") as fresh:  # an empty file, or none, becomes one
        assert fresh.runs() == []


def test_a_run_does_not_resume_a_strategy_whose_defaults_changed(tmp_path):
    """A spec names only what differs from the defaults, so after an upgrade that changes one
    the same spec runs otherwise: its new rows must not join the old ones under one label."""
    from ponder.think import parse_strategy

    def config(*strategies, stored_as=None):
        return {**CONFIG, "strategies": [s.spec for s in strategies],
                "settings": {stored_as or s.spec: s.settings for s in strategies}}

    auto, off = parse_strategy("auto"), parse_strategy("auto:sample_on=off")
    assert auto.settings["sample_on"] == "on" and auto.settings["reflect.rounds"] == "3"
    s = Store(tmp_path / "bench.db")
    s.open_run("r", config(auto), "0.1.0", MODEL)
    s.open_run("r", config(auto, parse_strategy("cot")), "0.1.0", MODEL)  # adds one: fine
    assert set(s.run_info("r")["config"]["settings"]) == {"auto", "cot"}
    # rows stored as "auto" by a ponder whose default was sample_on=off: refused
    s.open_run("older", config(off, stored_as="auto"), "0.1.0", MODEL)
    with pytest.raises(RunMismatchError, match=r"'auto'.*sample_on=off then, on now.*--run"):
        s.open_run("older", config(auto), "0.1.0", MODEL)
    # a default of the hard strategy auto builds counts too
    fewer = parse_strategy("auto:hard_with=reflect,reflect.rounds=2")
    s.open_run("fewer", config(fewer, stored_as="auto"), "0.1.0", MODEL)
    with pytest.raises(RunMismatchError, match=r"reflect.rounds=2 then, 3 now"):
        s.open_run("fewer", config(auto), "0.1.0", MODEL)
    # an option an upgrade added (none stored) is no change: there is no old value to write
    fewer_keys = config(auto)
    fewer_keys["settings"]["auto"] = {k: v for k, v in auto.settings.items() if k != "wave"}
    s.open_run("added", fewer_keys, "0.1.0", MODEL)
    s.open_run("added", config(auto), "0.1.0", MODEL)
    # a run stored before settings were recorded resumes as it did
    s.open_run("old", CONFIG, "0.1.0", MODEL)
    s.open_run("old", config(auto), "0.1.0", MODEL)


def test_add_done_rows_and_trace(tmp_path):
    s = Store(tmp_path / "bench.db")
    s.open_run("r", CONFIG, "0.1.0", MODEL)
    trace = [{"type": "Sampled", "text": "x" * 500, "tokens": 7}, {"type": "Final", "answer": "42"}]
    s.add(row(trace=trace, prompt_tokens=10, completion_tokens=5))
    s.add(row(correct=False))  # same key: ignored
    s.add(row(pid="p2", budget=500, seed=1, correct=False))
    rows = s.rows("r")
    assert len(rows) == 2
    first = next(r for r in rows if r.problem_id == "p1")
    assert first.trace == trace and first.correct is True and first.total_tokens == 15
    assert s.done("r") == {("p1", "cot", 0, 0), ("p2", "cot", 500, 1)}
    assert s.done("other") == set()
    with pytest.raises(ValueError):
        row(budget=-1)


def test_wal_mode(tmp_path):
    Store(tmp_path / "bench.db")
    con = sqlite3.connect(tmp_path / "bench.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_kill_9_keeps_committed_rows(tmp_path):
    db = tmp_path / "bench.db"
    child = textwrap.dedent(f"""
        import time
        from ponder.bench.store import ResultRow, Store
        s = Store({str(db)!r})
        s.open_run("r", {{"task": "t", "model": "m"}}, "0", {{}})
        for i in range(100000):
            s.add(ResultRow("r", f"p{{i}}", "cot", 0, 0, "1", "1", True, trace=[{{"i": i}}]))
            print(i + 1, flush=True)
            time.sleep(0.002)
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    try:
        k = 0
        while k < 25:
            line = proc.stdout.readline()
            assert line, "child exited early"
            k = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    s = Store(db)
    assert len(s.rows("r")) >= k
    assert s._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- stats -------------------------------------------------------------------------------------------


def test_wilson():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    for n in range(1, 60):  # rounding once put the bound past p (0/11: 3e-17 > 0)
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n, lo, hi)


def test_pareto():
    pts = [(100, 0.5), (200, 0.6), (150, 0.4), (300, 0.6), (400, 0.8), (50, 0.3)]
    assert pareto_frontier(pts) == [5, 0, 1, 4]
    assert pareto_frontier([]) == []
    assert pareto_frontier([(1, 0.5), (1, 0.5)]) == [0, 1]  # ties: neither dominates


def test_a_lone_configuration_gets_no_pareto_star():
    from ponder.bench.report import summarize

    one = summarize([row(pid="p1"), row(pid="p2", correct=False)])
    assert [c.pareto for c in one] == [False]
    two = summarize([row(pid="p1"), row(pid="p1", strategy="vote:n=4", correct=False)])
    assert [c.pareto for c in two] == [True, False]  # cot: same tokens, more right


def test_mcnemar_and_paired_difference():
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    rng = random.Random(1)
    a = {(f"p{i}", 0): rng.random() < 0.5 for i in range(200)}
    b = {k: v or rng.random() < 0.4 for k, v in a.items()}  # b keeps a's right answers, adds some
    b[("only-b", 0)] = True  # not shared: ignored
    d = paired_difference(a, b)
    assert d["n"] == 200 and d["b_only_a"] == 0 and d["c_only_b"] > 20
    assert d["diff"] == pytest.approx(d["acc_b"] - d["acc_a"])
    assert d["ci_low"] <= d["diff"] <= d["ci_high"] and d["ci_low"] > 0
    assert d["p_mcnemar"] < 1e-6
    assert paired_difference(a, b) == d  # fixed seed: reproducible
    assert paired_difference({}, {})["n"] == 0


# -- report ------------------------------------------------------------------------------------------

CONFIGS = [("cot", 0, 0.45, 1, 380), ("cot", 2000, 0.40, 1, 300), ("vote:n=4", 0, 0.7, 4, 1500)]


def synthetic_store(path, runs=("base", "tuned"), n_problems=10, seeds=(0,)) -> Store:
    s = Store(path)
    rng = random.Random(0)
    for r, run in enumerate(runs):
        s.open_run(run, {**CONFIG, "strategies": sorted({c[0] for c in CONFIGS})}, "0.1.0", MODEL)
        for strategy, budget, acc, calls, tokens in CONFIGS:
            for i in range(n_problems):
                for seed in seeds:
                    completion = int(tokens * calls * rng.uniform(0.6, 1.4))
                    s.add(ResultRow(run, f"gsm8k-{i}", strategy, budget, seed, "18", "18",
                                    rng.random() < acc + 0.1 * r, "math-verify", 120 * calls, completion,
                                    calls, completion / 80, [{"type": "Final"}]))
    return s


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_one_and_two_runs(tmp_path):
    s = synthetic_store(tmp_path / "bench.db")
    one = write_report(s, ["base"], tmp_path / "one")
    md, page = one.markdown.read_text(), one.html.read_text()
    for text in (md, page):
        assert "accuracy %" in text and "95% CI (Wilson)" in text and "mean tokens" in text
        for label in ("cot", "cot @ 2000 tok", "vote:n=4"):
            assert label in text
        assert "accuracy_vs_tokens.png" in text and "paired difference" not in text
    assert '<img src="accuracy_vs_tokens.png"' in page and "![accuracy vs tokens](accuracy_vs_tokens.png)" in md
    assert "ab12cd34ef56" in md and "gsm8k" in md
    w, h = png_size(one.plots[0])
    assert w >= 800 and h >= 500

    two = write_report(s, ["base", "tuned"], tmp_path / "two")
    md = two.markdown.read_text()
    assert "paired difference: A = base, B = tuned" in md and "McNemar p (exact)" in md
    assert md.count("| vote:n=4 |") == 3  # two config tables + the paired table
    assert "paired difference" in two.html.read_text()
    assert png_size(two.plots[0])[0] >= 800


def test_report_errors(tmp_path):
    s = synthetic_store(tmp_path / "bench.db", runs=("base",))
    with pytest.raises(ReportError, match="known runs: base"):
        write_report(s, ["nope"], tmp_path / "out")
    s.open_run("empty", CONFIG, "0.1.0", MODEL)
    with pytest.raises(ReportError, match="no results"):
        write_report(s, ["empty"], tmp_path / "out")


def test_the_plots_legend_shows_every_long_spec_whole(tmp_path):
    """Specs longer than the figure is wide are wrapped after their commas, and the legend fits
    inside the figure: nothing of a label is cut off at either edge."""
    from ponder.bench.plots import LABEL_WIDTH, accuracy_vs_tokens_figure, wrap_label
    from ponder.bench.stats import ConfigStats

    long = ("auto:probe_tokens=900,hard_with=beam,beam.floor=1,beam.step_tokens=256,verifier="
            "countdown,split=line,tools=off,verify_probe=check,max_tokens=900,temperature=0.8")
    wrapped = wrap_label(long)
    assert wrapped.replace("\n", "") == long and len(wrapped.split("\n")) == 2
    assert all(len(line) <= LABEL_WIDTH for line in wrapped.split("\n"))
    assert wrap_label("cot") == "cot" and wrap_label("a=" + "x" * 150) == "a=" + "x" * 150
    stats = [ConfigStats(label, label, 0, 200, 100 + i, (100 + i) / 200, 0.4, 0.6, 1000.0 * (i + 1),
                         500.0, 2.0, 1.0) for i, label in enumerate([long, long + ",seed=1", "cot"])]
    fig = accuracy_vs_tokens_figure([("run", stats)], "a title")
    fig.draw_without_rendering()
    box, legend = fig.bbox, fig.legends[0].get_window_extent()
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0, (box, legend)
