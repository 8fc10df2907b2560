"""`ponder train average`: the mean of several checkpoints' weights, saved as a model that ponder
loads and runs, with a record of what was averaged; bad input gets a one-line error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

for _name in ("torch", "transformers", "safetensors"):
    pytest.importorskip(_name, reason=f"averaging needs {_name} (pip install 'ponder[train]')")

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


@pytest.mark.parametrize("case", ["one", "twice", "missing", "other size", "not empty"])
def test_bad_input_gets_one_line(run_folder, tmp_path, case):
    ckpt, final, out = str(run_folder / "checkpoint-10"), str(run_folder), str(tmp_path / "o")
    sources, expected = {
        "one": ([final], "name at least two model folders"),
        "twice": ([final, final], "a folder is named twice"),
        "missing": ([final, str(tmp_path / "nowhere")], "no model.safetensors"),
        "other size": ([final, str(run_folder.parent / "deep")], "another architecture"),
        "not empty": ([ckpt, final], "is not empty; pick another --out"),
    }[case]
    if case == "not empty":
        (tmp_path / "o").mkdir()
        (tmp_path / "o" / "x").write_text("keep me")
    done = run_ponder("train", "average", *sources, "--out", out)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    if case == "not empty":
        assert (tmp_path / "o" / "x").read_text() == "keep me"
