"""benchmarks/countdown_hit_decisions.py: it reads each decision at the right token (a model that
copies the trace's next token is always right, one that copies the token after is not), and its
AUC counts ties as half."""

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
