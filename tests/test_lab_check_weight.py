"""``ponder train sft --check-weight``: which tokens of a countdown search decide a hit, the
weighted loss over them, and a short real SFT run that uses it."""

from __future__ import annotations

import re

import pytest

from ponder.lab import countdown_search, traces
from ponder.lab.check_weight import CheckWeights, decision_offsets, token_weights

# a result written where the search decides on it; not a move on a beam line's path ("a*b=c,c-d=e
# [state]"), which was decided on the line that first wrote it
_RESULT = re.compile(r"\d+[-+*/]\d+=(\d+)(?![,\d])")


def _need_train():
    for name in ("torch", "transformers", "trl", "datasets"):
        pytest.importorskip(name, reason=f"the lab needs {name} (pip install 'ponder[train]')")


@pytest.mark.parametrize("procedure", countdown_search.PROCEDURES)
def test_every_result_of_a_trace_has_one_decision_and_ok_follows_exactly_the_hits(procedure):
    hits = 0
    for p in traces.make_problems("countdown", 60, seed=3, count="3-4"):
        numbers, target = list(p.meta["numbers"]), int(p.meta["target"])
        trace, answer = traces.countdown_trace(numbers, target, procedure)
        if not trace:
            continue  # a given number is the target: nothing to search
        offsets = decision_offsets(trace + "\n")
        results = list(_RESULT.finditer(trace))
        assert len(offsets) == len(results), trace
        for m, at in zip(results, offsets, strict=True):
            gap = trace[m.end() : at]
            assert gap in ("", " "), (m.group(0), gap)  # the token right after "=c" (and a space)
            is_hit = int(m.group(1)) == target
            assert (trace[at : at + 2] == "ok") == is_hit, trace
            hits += is_hit
        assert (answer is not None) == any(int(m.group(1)) == target for m in results)
    assert hits > 20  # most of the 60 searches end in a hit


def test_token_weights_follow_token_boundaries():
    text = "50+7=57 [57 3|46]\n 43+3=46 ok\n8-1=7\n"
    weights = token_weights(list(text), CheckWeights(decision=4.0))
    weighted = [text[i] for i, w in enumerate(weights) if w == 4.0]
    assert weighted == ["[", "\n"]  # a hit's token has its own weight
    weights = token_weights(list(text), CheckWeights(decision=2.0, hit=5.0))
    assert [(text[i], w) for i, w in enumerate(weights) if w != 1] == [("[", 2), ("o", 5), ("\n", 2)]
    # a token spanning several characters is weighted when it starts at a decision offset
    assert token_weights(["43+3=46 ", "ok", "\n"], CheckWeights(hit=3.0)) == [1.0, 3.0, 1.0]
    assert token_weights(["Answer: 3*7+25"], CheckWeights(9.0, 9.0)) == [1.0]


def test_weighted_loss_is_the_plain_mean_at_weight_one_and_weighs_the_decisions():
    _need_train()
    import torch
    import torch.nn.functional as F

    from ponder.lab.check_weight import weighted_loss
    from ponder.lab.tokenizer import make_char_tokenizer

    tok = make_char_tokenizer()
    ids = tok("[43 3|46]\n 43+3=46 ok", add_special_tokens=False).input_ids
    labels = torch.tensor([ids, ids])
    labels[:, :10] = -100  # the prompt: no loss
    labels[1, -3:] = tok.pad_token_id
    labels[1, -3:] = -100  # the second row is shorter (padding carries no loss)
    torch.manual_seed(0)
    logits = torch.randn(2, len(ids), len(tok))
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, len(tok)), labels[:, 1:].reshape(-1),
                         ignore_index=-100, reduction="none").view(2, -1)  # fmt: skip
    mask = (labels[:, 1:] != -100).float()
    plain = (ce * mask).sum() / mask.sum()
    assert torch.allclose(weighted_loss(tok, CheckWeights())(logits, labels), plain)
    decision = len("[43 3|46]\n 43+3=46 ")  # the "o" of "ok": row 0 only (row 1 stops before it)
    w = mask.clone()
    w[0, decision - 1] = 5.0
    expected = (ce * w).sum() / w.sum()
    assert torch.allclose(weighted_loss(tok, CheckWeights(hit=5.0))(logits, labels), expected)
    assert torch.allclose(weighted_loss(tok, CheckWeights(decision=5.0))(logits, labels), plain)
    assert not torch.allclose(expected, plain)


def test_a_short_countdown_sft_run_with_check_weight_trains_and_records_it(tmp_path, capsys):
    _need_train()
    import json

    from ponder.cli import main

    out = str(tmp_path / "cw")
    args = ["train", "sft", "--task", "countdown", "--count", "3-4", "--examples", "300",
            "--steps", "30", "--batch-size", "8", "--lr", "3e-3", "--out", out, "--device", "cpu",
            "--threads", "1", "--log-every", "5", "--save-every", "1000", "--quiet"]  # fmt: skip
    assert main([*args, "--check-weight", "4"]) == 0
    record = json.loads((tmp_path / "cw" / "ponder_train.json").read_text())
    assert record["config"]["check_weight"] == 4.0 and "--check-weight 4.0" in record["command"]
    assert record["final_loss"] < 0.7 * record["first_loss"], record["losses"]
    capsys.readouterr()
    # the weight is part of the run's identity: the same run without it is another run
    assert main([*args, "--resume"]) == 2
    assert "check_weight" in capsys.readouterr().err
    assert main([*args[:-1], "--check-weight", "0", "--quiet"]) == 2
    assert "--check-weight must be a positive number" in capsys.readouterr().err


def test_resume_refuses_to_drop_a_setting_the_run_had(tmp_path):
    """Identities omit settings left at their default (older records lack them); resuming a run
    that had one (``--check-weight``, GRPO's ``--step-reward``) without it is another run."""
    pytest.importorskip("transformers", reason="the lab needs transformers")
    from ponder.errors import UserError
    from ponder.lab.runrecord import check_resume, write_record

    write_record(tmp_path, {"config": {"steps": 10, "step_reward": 0.5}, "finished": False})
    with pytest.raises(UserError, match="step_reward=0.5"):
        check_resume(tmp_path, {"steps": 10}, resume=True, say=lambda *a: None)
    assert check_resume(tmp_path, {"steps": 10, "step_reward": 0.5}, True, lambda *a: None)
