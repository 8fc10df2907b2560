"""Process reward models loaded with transformers: ``ProcessRewardModel(path).step_scores(...)``.

The PRM reads the question, a blank line, then the steps, each followed by ``separator``; it runs
on its own device (CPU unless told) and knows nothing of strategies or budgets.

- A token-classification head (``*ForTokenClassification``): the score of a step is read at the
  step's last token (its separator), as PRMs trained on step tags are.
- Otherwise a sequence-classification head: one score for the whole partial solution.

Labels: one logit is passed through a sigmoid; with several, the probability of the label whose
name says positive (``pos``, ``good``, ``correct``, ``+``), else of label 1. PRMs that score
through a language-model head's "+"/"-" tokens (Math-Shepherd) or through custom code
(Qwen2.5-Math-PRM) are not covered. Tested only on a tiny randomly initialised model.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ponder.models.base import ModelError


class ProcessRewardModel:
    def __init__(self, path: str, separator: str = "\n\n", device: str = "cpu") -> None:
        local = Path(path).expanduser()
        # a path that cannot be a Hub id (absolute, ./, ~) is checked now; the model loads at
        # its first score, after the strategy has sampled, too late for a typo
        if path.startswith(("/", "./", "../", "~")) and not local.is_dir():
            raise ValueError(f"prm:{path}: no such folder (a process reward model's directory)")
        self.path, self.separator, self.device = path, separator, device
        self._loaded = None
        self._lock = threading.Lock()  # one forward pass at a time; loading once

    def _load(self):
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_now()
        return self._loaded

    def _load_now(self):
        try:
            import torch
            import transformers
        except ImportError as e:
            raise ModelError(f"the prm verifier needs torch and transformers ({e})") from None
        from ponder.models.hf import load_pretrained

        fail = f"cannot load process reward model {self.path!r}"
        try:
            config = transformers.AutoConfig.from_pretrained(self.path)
        except Exception as e:  # OSError, ValueError, Hub errors: the setup is wrong
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelError(f"{fail}: {first}") from None
        token = any(a.endswith("ForTokenClassification") for a in config.architectures or ())
        auto = (
            transformers.AutoModelForTokenClassification
            if token
            else transformers.AutoModelForSequenceClassification
        )
        _, tok, model = load_pretrained(self.path, auto, self.device, "auto", fail)
        labels = [str(v).lower() for _, v in sorted(config.id2label.items())]
        good = ("pos", "good", "correct", "+")
        named = [i for i, v in enumerate(labels) if any(w in v for w in good)]
        positive = named[0] if named else min(1, len(labels) - 1)
        return torch, tok, model, token, positive

    def input_ids(self, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
        """Input ids and, per step, the position of its last token."""
        _, tok, *_ = self._load()
        ids = tok(question + "\n\n")["input_ids"]
        ends = []
        for s in steps:
            ids += tok(s.strip() + self.separator, add_special_tokens=False)["input_ids"]
            ends.append(len(ids) - 1)
        return ids, ends

    def step_scores(self, question: str, steps: list[str]) -> tuple[list[float], int]:
        """One score in [0, 1] per step, and the tokens read (blocking: call from a thread)."""
        torch, _, model, token, positive = self._load()
        ids, ends = self.input_ids(question, steps)
        with self._lock, torch.inference_mode():
            logits = model(torch.tensor([ids], device=model.device)).logits[0].float()
        # token head: (L, C), one row per position; sequence head: (C,)
        rows = logits[ends] if token else logits[None, :].expand(len(ends), -1)
        if rows.shape[-1] == 1:
            probs = torch.sigmoid(rows[:, 0])
        else:
            probs = torch.softmax(rows, dim=-1)[:, positive]
        return probs.tolist(), len(ids)
