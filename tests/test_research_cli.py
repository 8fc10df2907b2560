"""`ponder research` on the command line: kill -9 mid-run then --resume gives the uninterrupted
run's report without repeating a finished model call; every bad input is one line.

The scripted researcher stands in for ``--model`` (``research_fake.main`` runs the real command
line with it, as ``python -c`` in a subprocess, and logs each call's digest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import research_fake  # noqa: E402

import ponder.cli  # noqa: E402
import ponder.research.cli  # noqa: E402
from ponder.problems import load_problems  # noqa: E402
from ponder.problems.research import write_corpus  # noqa: E402

TESTS = Path(__file__).parent


@pytest.fixture
def setup(tmp_path, monkeypatch):
    p = next(x for x in load_problems("research", limit=20) if x.meta["hops"] == 3)
    write_corpus(tmp_path / "corpus", p.meta["documents"])
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path / "cache"))
    return p, tmp_path


def start(args, env, log):
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import research_fake; "
            "sys.exit(research_fake.main(sys.argv[1:]))")  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", code, "research", *args], env={**env, "RESEARCH_FAKE_LOG": str(log)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def in_process(argv, monkeypatch, log, capsys):
    monkeypatch.setenv("RESEARCH_FAKE_LOG", str(log))
    monkeypatch.setattr(
        ponder.research.cli, "resolve", lambda spec=None, **kw: research_fake.model()
    )
    code = ponder.cli.main(["research", *argv])
    return code, capsys.readouterr()


def call_digests(journal: Path) -> set[str]:
    """The digests of the model calls a journal records as completed."""
    records = [json.loads(line) for line in journal.read_text().splitlines()[1:]]
    return {r["digest"] for r in records if r["type"] == "step" and r.get("usage")}


def test_kill_9_then_resume_gives_the_same_report_without_repeating_calls(
    setup, monkeypatch, capsys
):
    p, tmp = setup
    args = [p.question, "--corpus", str(tmp / "corpus"), "--seed", "3", "--budget", "50000"]

    # uninterrupted, for reference
    code, _ = in_process(
        [*args, "--out", str(tmp / "whole")], monkeypatch, tmp / "whole.log", capsys
    )
    assert code == 0
    reference = (tmp / "whole" / "report.md").read_text()
    calls_whole = (tmp / "whole.log").read_text().split()

    # the same run, slowed down and killed with SIGKILL after a few completed steps
    env = {**os.environ, "RESEARCH_FAKE_DELAY": "0.004"}
    proc = start([*args, "--out", str(tmp / "run")], env, tmp / "first.log")
    journal = tmp / "run" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 6:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp / "run" / "report.md").exists()  # it really died mid-run
    finished = call_digests(journal)
    first = (tmp / "first.log").read_text().split()
    assert finished and len(finished) < len(calls_whole)

    proc = start(["--resume", str(tmp / "run")], {**os.environ}, tmp / "second.log")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    second = (tmp / "second.log").read_text().split()
    assert (tmp / "run" / "report.md").read_text() == reference  # byte for byte
    assert not finished & set(second)  # no finished call was made again
    in_flight = len(first) - len(finished)  # started before the kill, never completed
    assert len(first) + len(second) - in_flight == len(calls_whole)
    record = json.loads((tmp / "run" / "run.json").read_text())
    assert record["replayed"] >= len(finished) and record["usage"]["calls"] == len(calls_whole)
    assert (
        "replayed" in err
        and "report:" in out
        and out.rstrip().splitlines()[-1].startswith("Citations: ")
    )

    # resuming a finished run replays it all and calls nothing
    proc = start(["--resume", str(tmp / "run")], {**os.environ}, tmp / "third.log")
    proc.communicate(timeout=60)
    assert proc.returncode == 0 and not (tmp / "third.log").exists()
    assert (tmp / "run" / "report.md").read_text() == reference


def test_a_second_run_uses_the_cached_index(setup, monkeypatch, capsys):
    p, tmp = setup
    args = [p.question, "--corpus", str(tmp / "corpus")]
    _, first = in_process([*args, "--out", str(tmp / "a")], monkeypatch, tmp / "a.log", capsys)
    _, second = in_process([*args, "--out", str(tmp / "b")], monkeypatch, tmp / "b.log", capsys)
    assert "(index built)" in first.err and "(index from the cache)" in second.err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["  ", "--corpus", "{tmp}/corpus"], "the question is empty"),
        (["q?"], "research needs --corpus DIR"),
        (["q?", "--corpus", "{tmp}/nope"], "not a folder"),
        (["q?", "--corpus", "{tmp}/empty"], "nothing indexable"),
        (["q?", "--corpus", "{tmp}/corpus", "--hours", "0"], "--hours must be a positive"),
        (["q?", "--corpus", "{tmp}/corpus", "--out", "{tmp}/done"], "already holds a research run"),
        (["--resume", "{tmp}/corrupt"], "journal.jsonl line 2: not valid JSON"),
        (["--resume", "{tmp}/nothing"], "no journal.jsonl there"),
        (["q?", "--resume", "{tmp}/done"], "drop QUESTION"),
        (["--resume", "{tmp}/done", "--budget", "1"], "already spent"),
        (["q?", "--corpus", "{tmp}/corpus", "--budget", "0"], "--budget"),
    ],
)
def test_bad_input_is_one_line(setup, monkeypatch, capsys, argv, fragment):
    p, tmp = setup
    (tmp / "empty").mkdir()
    (tmp / "empty" / "blank.md").write_text("")
    (tmp / "nothing").mkdir()
    code, _ = in_process([p.question, "--corpus", str(tmp / "corpus"), "--out", str(tmp / "done")],
                         monkeypatch, tmp / "log", capsys)  # fmt: skip
    assert code == 0
    (tmp / "corrupt").mkdir()
    lines = (tmp / "done" / "journal.jsonl").read_text().splitlines()
    (tmp / "corrupt" / "journal.jsonl").write_text(
        "\n".join([lines[0], "{oops", *lines[1:]]) + "\n"
    )
    code, out = in_process([a.format(tmp=tmp) for a in argv], monkeypatch, tmp / "log", capsys)
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ponder: error:") and fragment in lines[0], (
        out.err
    )
