"""benchmarks/countdown_hit_decisions.py: it reads each decision at the right token (a model that
copies the trace's next token is always right, one that copies the token after is not), its AUC
counts ties as half, and ``--ok-bias`` lands on ``o`` after a result and nowhere else."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
probe = importlib.import_module("countdown_hit_decisions")  # benchmarks/ is scripts, not a package


class Peeking:
    """A 'model' whose logits at position i put all weight on the input's token i + shift: with
    shift 1 it predicts every next token of the trace exactly."""

    def __init__(self, vocab: int, shift: int) -> None:
        self.vocab, self.shift = vocab, shift

    def __call__(self, ids):
        import torch

        n = ids.shape[1]
        logits = torch.full((1, n, self.vocab), -20.0)
        for i in range(n):
            logits[0, i, ids[0, min(i + self.shift, n - 1)]] = 20.0
        return SimpleNamespace(logits=logits)


def test_decisions_are_read_at_the_token_that_decides():
    pytest.importorskip("torch", reason="the probe runs a torch model")
    from ponder.lab.tokenizer import make_char_tokenizer

    tok = make_char_tokenizer()
    problems = probe.held_out(12, 0)
    exact = probe.decisions(Peeking(len(tok), 1), tok, problems)
    hits = [d for d in exact if d[0]]
    assert len(hits) >= 8 and all(d[2] and d[1] > 0.99 for d in hits)  # every hit seen
    assert not any(d[2] for d in exact if not d[0])  # and nothing else called one
    late = probe.decisions(Peeking(len(tok), 2), tok, problems)  # reads one token too far
    assert not any(d[2] for d in late if d[0])


def test_auc_counts_ties_as_half():
    assert probe.auc([0.9, 0.5], [0.1, 0.5]) == pytest.approx(3.5 / 4)
    assert probe.auc([0.9], [0.1, 0.2]) == 1.0
    assert probe.auc([0.1], [0.9]) == 0.0


def test_the_ok_bias_lands_on_ok_after_a_result_and_nowhere_else():
    """The bias lands on ``o`` after ``=c `` and nowhere else; greedy decoding runs through it (an
    untrained model solves nothing)."""
    pytest.importorskip("transformers", reason="the probe runs a transformers model")
    import torch

    from ponder.lab.model import make_tiny_llama
    from ponder.lab.tokenizer import make_char_tokenizer

    tok = make_char_tokenizer()
    model = make_tiny_llama(tok, "tiny", seed=0).eval()
    problems = probe.held_out(2, 0)
    assert probe.biased_greedy(model, tok, problems, 0.0, 8) == 0
    # fed "=46 " and "=46x", the processor biases only the first, and only its "o"
    ids = torch.tensor([tok("a=46 ", add_special_tokens=False).input_ids,
                        tok("a=46x", add_special_tokens=False).input_ids])  # fmt: skip
    scores = torch.zeros(2, len(tok))
    processor = probe.ok_bias_processor(tok, 7.0)
    out = processor(ids, scores)
    o = tok.convert_tokens_to_ids("o")
    assert out[0, o] == 7.0 and out[1, o] == 0.0 and out.sum() == 7.0
