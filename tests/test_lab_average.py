"""`ponder train average`: the mean of several checkpoints' weights, saved as a model that ponder
loads and runs, with a record of what was averaged; bad input gets a one-line error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("torch", "transformers", "safetensors"):
    pytest.importorskip(_name, reason=f"averaging needs {_name} (pip install 'ponder[train]')")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from ponder.lab.model import make_tiny_llama, save  # noqa: E402
from ponder.lab.tokenizer import make_char_tokenizer  # noqa: E402


def run_ponder(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ponder", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as training leaves it: the final model, a checkpoint-N folder, a record."""
    tok = make_char_tokenizer()
    run = tmp_path_factory.mktemp("run") / "grpo"
    save(make_tiny_llama(tok, seed=0), tok, run / "checkpoint-10")
    save(make_tiny_llama(tok, seed=1), tok, run)
    (run / "ponder_train.json").write_text(json.dumps({"command": "ponder train grpo ..."}))
    save(make_tiny_llama(tok, size="deep", seed=2), tok, run.parent / "deep")
    save(make_tiny_llama(tok, seed=3).to(torch.bfloat16), tok, run.parent / "bf16")
    shutil.copytree(run / "checkpoint-10", run.parent / "copy")  # the same weights, elsewhere
    (run.parent / "broken").mkdir()
    (run.parent / "broken" / "model.safetensors").write_bytes(b"\x00" * 7)
    shutil.copy(run / "config.json", run.parent / "broken" / "config.json")
    return run


def test_the_average_is_the_mean_of_the_weights_and_ponder_runs_it(run_folder, tmp_path):
    out = tmp_path / "avg"
    done = run_ponder("train", "average", str(run_folder / "checkpoint-10"), str(run_folder),
                      "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"saved hf:{out} · the mean of 2 checkpoints")
    a = load_file(str(run_folder / "checkpoint-10" / "model.safetensors"))
    b = load_file(str(run_folder / "model.safetensors"))
    mean = load_file(str(out / "model.safetensors"))
    assert mean.keys() == a.keys()
    for k in a:
        assert mean[k].dtype == a[k].dtype
        assert ((mean[k] - (a[k] + b[k]) / 2).abs().max() < 1e-6), k
    assert any(not (mean[k] == a[k]).all() for k in a)  # not a copy of either
    record = json.loads((out / "ponder_train.json").read_text())
    assert record["kind"] == "average" and len(record["sources"]) == 2
    assert record["from_record"] == {"command": "ponder train grpo ..."}  # the checkpoint's run
    solved = run_ponder("solve", "--model", f"hf:{out}", "--max-tokens", "8", "What is 1+1?")
    assert solved.returncode == 0, solved.stderr


def test_the_mean_keeps_the_first_checkpoints_dtype(run_folder, tmp_path):
    from ponder.lab.average import average_models

    bf16, final = run_folder.parent / "bf16", run_folder
    average_models([bf16, final], tmp_path / "a", "test")
    a, b = load_file(str(bf16 / "model.safetensors")), load_file(str(final / "model.safetensors"))
    mean = load_file(str(tmp_path / "a" / "model.safetensors"))
    for k in a:
        assert mean[k].dtype == torch.bfloat16, k
        expected = ((a[k].float() + b[k].float()) / 2).to(torch.bfloat16)
        assert torch.equal(mean[k], expected), k  # summed in float32, then cast once


CASES = ["one", "twice", "twice by another path", "same weights", "missing", "other size",
         "unreadable", "not empty", "a file", "inside a file", "cannot be made"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line(run_folder, tmp_path, case, monkeypatch):
    ckpt, final, out = str(run_folder / "checkpoint-10"), str(run_folder), str(tmp_path / "o")
    monkeypatch.chdir(run_folder.parent)
    sources, expected = {
        "one": ([final], "name at least two model folders"),
        "twice": ([final, final], "a folder is named twice"),
        "twice by another path": ([final, "grpo"], "a folder is named twice"),
        "same weights": ([ckpt, str(run_folder.parent / "copy")], "hold the same weights"),
        "missing": ([final, str(tmp_path / "nowhere")], "no model.safetensors"),
        "other size": ([final, str(run_folder.parent / "deep")], "another architecture"),
        "unreadable": ([final, str(run_folder.parent / "broken")], "unreadable model.safetensors"),
        "not empty": ([ckpt, final], "is not empty; pick another --out"),
        "a file": ([ckpt, final], "is a file; --out must be a new or empty folder"),
        "inside a file": ([ckpt, final], "o is a file, so no folder can be made in it"),
        "cannot be made": ([ckpt, final], "--out /proc/nope: cannot make this folder ("),
    }[case]
    if case == "not empty":
        (tmp_path / "o").mkdir()
        (tmp_path / "o" / "x").write_text("keep me")
    if case in ("a file", "inside a file"):
        (tmp_path / "o").write_text("keep me")
    if case == "inside a file":
        out = str(tmp_path / "o" / "sub")
    if case == "cannot be made":
        if not Path("/proc/self").is_dir():
            pytest.skip("needs Linux's /proc, where nothing can be made")
        out = "/proc/nope"
    done = run_ponder("train", "average", *sources, "--out", out)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    if case == "not empty":
        assert (tmp_path / "o" / "x").read_text() == "keep me"
    if case in ("a file", "inside a file"):
        assert (tmp_path / "o").read_text() == "keep me"
