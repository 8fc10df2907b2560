"""``ponder train sft --micro-batches K``: a step's batch run as K length-sorted micro-batches is
the same optimizer step as one batch (plain and check-weighted loss), with fewer padded positions,
and a bad K is a one-line error."""

from __future__ import annotations

import json

import pytest

from ponder.lab import traces


def _need_train():
    for name in ("torch", "transformers", "trl", "datasets"):
        pytest.importorskip(name, reason=f"the lab needs {name} (pip install 'ponder[train]')")


def _rows_of_mixed_length(path, n=8):
    """``n`` countdown search traces, as ``--data`` rows, of lengths far apart."""
    rows = sorted(traces.examples("countdown", 200, seed=5, count="3-4"), key=lambda r: len(r["completion"]))
    picked = [rows[i * (len(rows) - 1) // (n - 1)] for i in range(n)]
    assert len(picked[-1]["completion"]) > 4 * len(picked[0]["completion"])
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n"
                            for r in picked))  # fmt: skip
    return path


def _train(tmp_path, monkeypatch, data, micro_batches, hit_weight):
    """Three steps on a data file of exactly one batch (so every step sees every row, whatever the
    order); the run's record, its final weights and the padded positions the model was given."""
    from ponder.lab import model as lab_model
    from ponder.lab import sft

    positions = []
    make = lab_model.make_tiny_llama

    def make_and_watch(*args, **kwargs):
        m = make(*args, **kwargs)
        m.register_forward_pre_hook(
            lambda _m, _a, kw: positions.append(kw["input_ids"].numel()), with_kwargs=True
        )
        return m

    monkeypatch.setattr(lab_model, "make_tiny_llama", make_and_watch)
    out = tmp_path / f"k{micro_batches}-w{hit_weight}"
    opts = sft.SFTOptions(out=str(out), task=None, data=str(data), steps=3, batch_size=8, lr=1e-2,
                          size="tiny", seed=0, device="cpu", save_every=100, log_every=1,
                          micro_batches=micro_batches, hit_weight=hit_weight)  # fmt: skip
    record = sft.train_sft(opts, progress=False, say=lambda *_: None)
    monkeypatch.undo()  # the next run watches its own model only
    _, trained = lab_model.load_start(str(out))
    return record, trained.state_dict(), positions


@pytest.mark.parametrize("hit_weight", [1.0, 4.5])
def test_micro_batches_take_the_same_step_as_one_batch_with_less_padding(
    tmp_path, monkeypatch, hit_weight
):
    _need_train()
    import torch

    data = _rows_of_mixed_length(tmp_path / "rows.jsonl")
    one, w1, pos1 = _train(tmp_path, monkeypatch, data, 1, hit_weight)
    four, w4, pos4 = _train(tmp_path, monkeypatch, data, 4, hit_weight)
    # the loss of each step is the mean over the same tokens: not 4x it, nor a mean of means
    for (s1, l1), (s4, l4) in zip(one["losses"], four["losses"], strict=True):
        assert s1 == s4 and l1 == pytest.approx(l4, rel=1e-4)
    for name in w1:
        # Adam moves a weight by about lr = 0.01 a step; summing in another order leaves the two
        # runs up to 3e-5 apart, and a step on other rows or other token weights far more
        assert torch.allclose(w1[name], w4[name], atol=3e-4), name
    assert four["config"]["micro_batches"] == 4 and "micro_batches" not in one["config"]
    assert len(pos4) == 4 * len(pos1)  # four forward passes a step
    assert sum(pos4) < 0.75 * sum(pos1)  # rows of like lengths padded together


def test_a_micro_batch_count_that_does_not_divide_the_batch_is_one_line(tmp_path, capsys):
    from ponder.cli import main

    code = main(["train", "sft", "--task", "countdown", "--batch-size", "32", "--micro-batches", "5",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--micro-batches 5 must divide --batch-size 32" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_an_interrupted_micro_batch_run_resumes_to_the_same_model(tmp_path):
    """The sampler's order is restored on resume: an interrupted run, resumed, ends where an
    uninterrupted one does (16 rows, 2 steps an epoch, so later steps depend on the order)."""
    _need_train()
    import torch
    from transformers import TrainerCallback

    from ponder.lab.model import load_start
    from ponder.lab.sft import SFTOptions, train_sft

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    data = _rows_of_mixed_length(tmp_path / "rows.jsonl", n=16)
    opts = {"task": None, "data": str(data), "steps": 7, "batch_size": 8, "lr": 1e-2,
            "save_every": 3, "log_every": 1, "device": "cpu", "threads": 1, "micro_batches": 4}  # fmt: skip
    whole = train_sft(SFTOptions(out=str(tmp_path / "whole"), **opts), progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_sft(SFTOptions(out=str(tmp_path / "cut"), **opts), progress=False, callbacks=[Interrupt()])
    resumed = train_sft(SFTOptions(out=str(tmp_path / "cut"), resume=True, **opts), progress=False,
                        say=lambda *_: None)  # fmt: skip
    assert resumed["resumed_from"] == "checkpoint-3"
    assert [s for s, _ in resumed["losses"]] == [s for s, _ in whole["losses"]]
    for (_, a), (_, b) in zip(resumed["losses"], whole["losses"], strict=True):
        assert a == pytest.approx(b, rel=1e-4)
    a, b = load_start(str(tmp_path / "whole"))[1], load_start(str(tmp_path / "cut"))[1]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=3e-4), name
