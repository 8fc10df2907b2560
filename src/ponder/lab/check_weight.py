"""A heavier SFT loss on the tokens where a countdown search decides whether it hit the target.

The idea is per-token loss weighting (as in class-weighted cross-entropy): tokens that are rare but
decisive get more of the gradient. A countdown trace (``lab.countdown_search``) writes every tried
move as ``a op b = c``; the character after ``=c`` decides whether ``c`` is the target (`` ok``
ends the search) or not (another move, a state, ``no``, or the end of the line). A trace writes
dozens of results and hits the target once, so these decisions are a few percent of the tokens and
the hits a tiny share of those. Measured with teacher forcing on 200 held-out puzzles' own traces
(seed 20,000; ``benchmarks/countdown_hit_decisions.py``): the stop-26 ``lab:countdown-sft`` puts
``ok`` first at 15% of the hits (median P(ok) 0.12) and at 0.25% of the other results, and a
missed hit is the commonest first flaw of its greedy searches.

Two weights (``CheckWeights``): ``decision`` for every decision token, which focuses training on
the comparison without moving the model's prior towards ``ok``, and ``hit`` for the hit's token
alone, a class weight that does move it (for a calibrated model, a weight w multiplies the odds of
``ok`` by w; it trades missed hits for false ones). Measured on the deep countdown model, 200
continued SFT steps at ``decision`` 10 left the hit recall at 15%; 400 at ``hit`` 4.5 raised it to
55%, with ``ok`` first at 5.6% of the other results, and greedy accuracy rose
(docs/results/countdown_scaling/check_weight). Departure from class-weighted cross-entropy as
usually done: the classes are found by a regular expression over the text, so only traces written
in the ``=c`` form get the weights. The batch loss is the weighted mean over the completion's
tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "=c" then the character that decides: after a space, the next one ("o" of "ok", a digit, "[",
# "n" of "no"); or the line's end itself
_DECISION = re.compile(r"=\d+(?: (?=\S)|(?=\n))")


def decision_offsets(text: str) -> list[int]:
    """Character offsets of the decision tokens in ``text`` (see the module docstring)."""
    return [m.end() for m in _DECISION.finditer(text)]


@dataclass(frozen=True)
class CheckWeights:
    """Loss weights: ``hit`` for the token that says a result is the target (the ``o`` of ``ok``),
    ``decision`` for the other decision tokens; every other token weighs 1."""

    decision: float = 1.0
    hit: float = 1.0

    @property
    def plain(self) -> bool:
        return self.decision == 1 and self.hit == 1


def token_weights(token_texts: list[str], weights: CheckWeights) -> list[float]:
    """One weight per token, by where it starts: at a hit, at another decision, or elsewhere."""
    starts, at = [], 0
    for piece in token_texts:
        starts.append(at)
        at += len(piece)
    text = "".join(token_texts)
    decisions = set(decision_offsets(text))

    def weight(s: int) -> float:
        if s not in decisions:
            return 1.0
        return weights.hit if text.startswith("ok", s) else weights.decision

    return [weight(s) for s in starts]


def weighted_loss(tokenizer, weights: CheckWeights):
    """``loss(logits, labels, total=None)``: next-token cross-entropy over the labelled
    (completion) tokens, each weighted by ``token_weights``, summed and divided by ``total``, by
    default the weights' sum (a weighted mean). A step run as several micro-batches passes the sum
    of the weights over the whole step (``label_weights``), so that it is the same weighted mean."""
    import torch.nn.functional as F

    weights_of = label_weights(tokenizer, weights)

    def loss(logits, labels, total=None):
        logits = logits[:, :-1, :]
        target = labels[:, 1:]
        w = weights_of(labels).to(logits.device)
        ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1),
                             ignore_index=-100, reduction="none").view_as(w)  # fmt: skip
        if total is None:
            total = w.sum().clamp(min=1.0)
        return (ce * w).sum() / total

    return loss


def label_weights(tokenizer, weights: CheckWeights):
    """``weights_of(labels)``: the weight of each next-token target ``labels[:, 1:]``, 0 where the
    label is ignored (-100: the prompt, padding)."""
    import torch

    # the lab's tokenizer is character-level: a token's piece is its text. A token that is not
    # text (a special, an ignored -100 label) is a character that never joins a "=c".
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    specials = set(tokenizer.all_special_ids)
    text_of = {i: "\x00" if i in specials else p for i, p in enumerate(pieces)}

    def weights_of(labels):
        rows = [[text_of.get(int(t), "\x00") for t in row] for row in labels.tolist()]
        w = torch.tensor([token_weights(r, weights)[1:] for r in rows], dtype=torch.float32)
        return w * (labels[:, 1:] != -100).float().cpu()

    return weights_of


def trainer_class(weights: CheckWeights):
    """TRL's ``SFTTrainer`` (its micro-batch sampler seeded, ``lab.micro_batches``); for weights
    other than 1, a subclass with ``weighted_loss``.

    Why a subclass and not the Trainer's ``compute_loss_func``: with that hook TRL runs a second,
    gradient-free forward pass per batch for its token metrics, a third more time on a CPU.
    The step's normalizer is the sum of its weights over every micro-batch, computed where the
    Trainer counts the step's tokens (``_get_num_items_in_batch``): with one micro-batch it is that
    batch's weighted mean, as before; with several, the same step."""
    from trl import SFTTrainer

    from ponder.lab.micro_batches import seeded

    if weights.plain:
        return seeded(SFTTrainer)

    class CheckWeightedSFTTrainer(SFTTrainer):
        def _check_weights(self):
            if not hasattr(self, "_check_loss"):  # built on first use: needs processing_class
                self._label_weights = label_weights(self.processing_class, weights)
                self._check_loss = weighted_loss(self.processing_class, weights)

        def _get_num_items_in_batch(self, batch_samples, device):
            if not batch_samples or "labels" not in batch_samples[0]:
                return super()._get_num_items_in_batch(batch_samples, device)
            self._check_weights()
            total = sum(self._label_weights(b["labels"]).sum() for b in batch_samples)
            return total.clamp(min=1.0).to(device)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self._check_weights()
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False)
            loss = self._check_loss(outputs.logits, inputs["labels"], num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

    return seeded(CheckWeightedSFTTrainer)
