"""Stop SFT once the model reaches a target accuracy on a validation set of its task.

The lab wants an SFT model that is right sometimes, not always, so that test-time and RL compute
have room to help. A fixed step count does not give that reliably: accuracy on 3-digit addition
climbs steeply over a few hundred steps, and two CPUs whose floating-point order differs reach the
same accuracy tens of steps apart (seed 0, step 400: 26% on one machine, 7% on another). Stopping
on measured accuracy lands in the same place on every machine.

The validation problems come from another seed than training's and skip every training question;
the lab experiment's held-out test set uses yet another seed, so the stopping rule never sees it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers import TrainerCallback

from ponder.errors import UserError
from ponder.lab import traces
from ponder.lab.evaluate import accuracy
from ponder.lab.model import save
from ponder.models.hf import no_progress_bars
from ponder.problems.base import Problem

VALIDATION_SEED_OFFSET = 20_000  # lab_scaling's held-out test set uses 10_000 + seed


def validation_problems(task: str, n: int, seed: int, exclude: set[str], **options) -> list[Problem]:
    """``n`` problems of ``task`` whose questions are not in ``exclude`` (the training questions)."""
    fresh = traces.make_problems(task, 2 * n + 50, VALIDATION_SEED_OFFSET + seed, **options)
    chosen = [p for p in fresh if p.question not in exclude][:n]  # fewer in a small task space
    if not chosen:
        raise UserError(
            "--stop-at-accuracy: training covers every question of this task; nothing is left to "
            "validate on (use fewer --examples or a harder task)"
        )
    return chosen


class StopAtAccuracy(TrainerCallback):
    """Every ``every`` steps, greedy accuracy on ``problems``; stop training once it is >= ``target``.

    The model is evaluated through ponder's real ``hf:`` backend and grader (the same path as the
    bench), from a snapshot written to ``scratch`` (a few MB for lab models)."""

    def __init__(self, problems: list[Problem], target: float, every: int, tokenizer, scratch: Path,
                 say=print) -> None:  # fmt: skip
        self.problems, self.target, self.every = problems, target, every
        self.tokenizer, self.scratch, self.say = tokenizer, Path(scratch), say
        # an untrained model rambles to the cap: allow 1.5x the longest worked trace (characters =
        # tokens for the lab's character tokenizer), not a generic 256
        # (countdowns without a trace within its cap are validated on, but have no length)
        longest = max(len(traces.completion(p)) for p in problems if traces.has_trace(p))
        self.max_tokens = int(1.5 * longest) + 16
        self.history: list[tuple[int, float]] = []  # (step, validation accuracy)
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.every or step >= state.max_steps:
            return control
        was_training = model.training
        model.eval()
        try:  # no "Writing model shards"/"Loading weights" bars mid-run
            with no_progress_bars():
                save(model, self.tokenizer, self.scratch)
                acc = accuracy(str(self.scratch), self.problems, max_tokens=self.max_tokens).accuracy
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
            model.train(was_training)
        self.history.append((step, acc))
        self.say(f"step {step}: validation accuracy {100 * acc:.1f}% (stop at {100 * self.target:.0f}%)")
        if acc >= self.target:
            self.stopped_at = step
            control.should_training_stop = True
            control.should_save = True  # the checkpoint a resume would find is the stopping point
        return control
