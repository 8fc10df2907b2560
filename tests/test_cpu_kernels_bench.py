"""benchmarks/cpu_kernels.py: its arguments, the ratio and spread arithmetic on recorded figures, and
(slow) its smoke mode against the llama.cpp build installed here."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
cpu_kernels = importlib.import_module("cpu_kernels")  # benchmarks/ is scripts, not a package


def one(single: float, batched: float) -> dict:
    return {"single": {"tok_s": single}, "batched": {"tok_s": batched}}


def test_builds_are_label_path_pairs_in_order_and_default_to_this_interpreter():
    args = cpu_kernels.parse_args(["--python", "avx2=/a/bin/python", "--python", "avx512=/b/bin/python"])
    assert list(args.builds.items()) == [("avx2", "/a/bin/python"), ("avx512", "/b/bin/python")]
    assert (args.threads, args.rounds, args.n) == (2, 5, 16)
    assert cpu_kernels.parse_args([]).builds == {"current": sys.executable}
    smoke = cpu_kernels.parse_args(["--smoke", "--threads", "1"])
    assert (smoke.rounds, smoke.n, smoke.max_tokens, smoke.single_calls, smoke.threads) == (1, 2, 8, 1, 1)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--python", "/no/label/python"], "LABEL=PATH"),
        (["--python", "a=/x", "--python", "a=/y"], "given twice"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        cpu_kernels.parse_args(argv)
    assert says in str(exc.value) + capsys.readouterr().err


def test_ratios_are_taken_within_each_round_against_the_first_build():
    # Round 2 is twice as slow for both builds (load on a shared machine): the ratio does not move.
    rounds = [
        {"avx2": one(20.0, 40.0), "avx512": one(30.0, 50.0)},
        {"avx2": one(10.0, 20.0), "avx512": one(15.0, 25.0)},
        {"avx2": one(20.0, 40.0), "avx512": one(20.0, 60.0)},
    ]
    summary = cpu_kernels.summarize(rounds, ["avx2", "avx512"])
    assert summary["single"]["avx512"]["ratio"] == [1.5, 1.5, 1.0]
    assert summary["batched"]["avx512"]["ratio"] == [1.25, 1.25, 1.5]
    assert summary["single"]["avx2"]["ratio"] == [1.0, 1.0, 1.0]
    assert summary["batched"]["avx512"]["tok_s"] == [50.0, 25.0, 60.0]
    md = cpu_kernels.table(summary, ["avx2", "avx512"], n=16)
    assert "| avx512 | 20.0 (15.0-30.0) | 1.50 (1.00-1.50) | 50.0 (25.0-60.0) | 1.25 (1.25-1.50) |" in md
    assert "16 batched, tok/s | batched, x avx2 |" in md
    assert cpu_kernels.spread([7.0]) == "7.0"  # one round: no range


@pytest.mark.slow
def test_smoke_measures_the_installed_build_in_child_processes(tmp_path):
    """About 10 s on the 2-core development machine with --threads 1 (one child per measure)."""
    raw = tmp_path / "rounds.json"
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "cpu_kernels.py"), "--smoke", "--threads", "1", "--json", str(raw)],
        check=False, capture_output=True, text=True, timeout=120, env={**os.environ, "PONDER_THREADS": ""},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| current |" in out.stdout and "x current" in out.stdout
    data = json.loads(raw.read_text())
    (only_round,) = data["rounds"]
    got = only_round["current"]
    pids = {got[m]["pid"] for m in ("single", "batched")}
    assert len(pids) == 2 and data["parent_pid"] not in pids  # each measure in a process of its own
    assert got["single"]["tokens"] > 0 and got["batched"]["tokens"] > 0
    assert got["single"]["threads"] == got["batched"]["threads"] == 1
    import llama_cpp

    build = data["builds"]["current"]
    assert build["llama_cpp"] == llama_cpp.__file__ and build["system_info"].startswith("CPU :")
    assert any("libggml" in Path(p).name for p in build["libs"])
    assert data["summary"]["single"]["current"]["ratio"] == [1.0]
