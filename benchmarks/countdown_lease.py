"""Train the countdown SFT and GRPO models within one wall-clock budget (a lent GPU's lease).

The CPU recipe of ``lab:countdown-sft`` and ``lab:countdown-grpo`` (``docs/results/
countdown_scaling/deep``) is limited by compute: 1,200 SFT steps of 32 traces took 2 hours on 2
cores and the model still slips on two-digit products. This script spends a fixed number of
seconds, for instance one 10-minute call on a GPU, on the same model size and the same recipe,
only longer:

1. SFT (cosine schedule, so its length must be known before the first step). A probe run (another
   seed, 3,000 problems, the same batch size and model) is timed by a callback from its 10th step
   on; the real run gets as many steps as fit ``--sft-share`` of the budget after ``--overhead``
   seconds kept for generating and tokenizing its data.
2. GRPO from that model, at the shipped run's settings, with a constant learning rate, planned for
   ``--grpo-steps`` and stopped by a deadline callback where time runs out (harmless under a
   constant rate; the model is saved as usual and ``ponder_train.json`` records the step reached,
   with ``finished: false``). The problem set is fixed in size, so ``--steps K`` with the same
   ``--examples`` reproduces a run stopped at step K.

Each stage also stops at the deadline, so a budget is never overrun by a killed process that
leaves no model. ``--tar-to DIR`` writes each final model as one tar file there (a lease's
results come back as files).

    python benchmarks/countdown_lease.py --out runs/lease --budget 540 --device cuda

Departures from the shipped recipe, each because a GPU makes it cheap: batch 128 instead of 32,
250,000 generated problems instead of 64,000, TF32 matrix products (``lab.model.tf32_for``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path

from transformers import TrainerCallback

from ponder.errors import UserError
from ponder.lab import grpo, sft
from ponder.lab.cli import sft_command
from ponder.lab.grpo_cli import grpo_command
from ponder.lab.runrecord import check_out, make_out

MODEL_FILES = ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
               "tokenizer_config.json", "chat_template.jinja", "ponder_train.json")  # fmt: skip


class StepClock(TrainerCallback):
    """Seconds per optimizer step from step ``first`` to the last step seen."""

    def __init__(self, first: int = 10):
        self.first, self.t_first, self.t_last, self.last = first, None, None, 0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.first:
            self.t_first = time.perf_counter()
        self.t_last, self.last = time.perf_counter(), state.global_step

    def seconds_per_step(self) -> float:
        if self.t_first is None or self.last <= self.first:
            raise SystemExit("the probe is too short to time: raise --probe-steps")
        return (self.t_last - self.t_first) / (self.last - self.first)


class Deadline(TrainerCallback):
    """Stop training (the model is still saved) once the wall clock passes ``at``."""

    def __init__(self, at: float):
        self.at, self.stopped_at = at, None

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at is None and time.time() >= self.at:
            self.stopped_at = state.global_step
            control.should_training_stop = True


def plan_steps(seconds: float, per_step: float, least: int = 100, most: int = 20_000) -> int:
    """Steps that fit ``seconds``, rounded down to a hundred, within [least, most]."""
    return max(least, min(most, int(seconds / per_step) // 100 * 100))


def tar_model(model_dir: Path, tar_path: Path) -> None:
    with tarfile.open(tar_path, "w") as tar:
        for name in MODEL_FILES:
            if (model_dir / name).is_file():
                tar.add(model_dir / name, arcname=name)


def check_paths(out: Path, tar_to: str | None) -> None:
    """Before the probe spends any of the budget: OUT can hold two new runs (a run left there by
    an earlier call would be refused only after the probe and SFT's data), and --tar-to is a
    folder, made now (it was found missing only once SFT had finished)."""
    check_out(out)
    for stage in ("sft", "grpo"):
        if (out / stage / "ponder_train.json").exists() or (out / stage / "config.json").exists() \
                or any((out / stage).glob("checkpoint-*")):  # fmt: skip
            raise UserError(f"{out / stage} already holds a training run (a lease's run starts "
                            "afresh); pick another --out")  # fmt: skip
    if tar_to:
        try:
            check_out(Path(tar_to))
            make_out(Path(tar_to))
        except UserError as e:  # the messages name --out
            raise UserError(str(e).replace("--out", "--tar-to")) from None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="run folder: OUT/sft and OUT/grpo")
    p.add_argument("--budget", type=float, required=True, help="seconds for the whole script")
    p.add_argument("--sft-share", type=float, default=0.6, help="of the budget (default 0.6)")
    p.add_argument("--overhead", type=float, default=140.0,
                   help="seconds kept for SFT data and tokenizing (default 140)")
    p.add_argument("--examples", type=int, default=250_000, help="SFT problems")
    p.add_argument("--batch-size", type=int, default=128, help="SFT traces a step")
    p.add_argument("--lr", type=float, default=3e-3, help="SFT peak learning rate")
    p.add_argument("--size", default="deep")
    p.add_argument("--probe-steps", type=int, default=60)
    p.add_argument("--grpo-steps", type=int, default=400, help="planned; the deadline may stop it")
    p.add_argument("--device", default="auto")
    p.add_argument("--tar-to", help="write sft.tar and grpo.tar (the final models) here")
    args = p.parse_args()
    start = time.time()
    out = Path(args.out)
    if args.budget <= 0:
        p.error(f"--budget must be a number of seconds above 0, not {args.budget:g}")
    try:
        check_paths(out, args.tar_to)
    except UserError as e:
        p.error(str(e))
    say = lambda text: print(f"[{time.time() - start:6.0f} s] {text}", flush=True)  # noqa: E731

    def sft_options(**kw) -> sft.SFTOptions:
        return sft.SFTOptions(task="countdown", task_options={"count": "3-4"}, batch_size=args.batch_size,
                              lr=args.lr, schedule="cosine", size=args.size, device=args.device, **kw)  # fmt: skip

    probe = out / "sft-probe"
    shutil.rmtree(probe, ignore_errors=True)
    clock = StepClock()
    sft.train_sft(sft_options(out=str(probe), examples=3000, steps=args.probe_steps, seed=1,
                              save_every=10**6, log_every=10),
                  progress=False, callbacks=[clock], say=say)  # fmt: skip
    per_step = clock.seconds_per_step()
    sft_end = start + args.budget * args.sft_share
    steps = plan_steps(sft_end - time.time() - args.overhead, per_step)
    opts = sft_options(out=str(out / "sft"), examples=args.examples, steps=steps, seed=0,
                       save_every=500, log_every=50)  # fmt: skip
    say(f"SFT probe: {per_step * 1000:.1f} ms a step at batch {args.batch_size}; planned {steps} steps")
    say(sft_command(opts))
    stop = Deadline(sft_end)
    rec = sft.train_sft(opts, command=sft_command(opts), progress=False, callbacks=[stop], say=say)
    say(f"SFT done: step {rec['global_step']} of {steps}, loss {rec['first_loss']:.3f} -> "
        f"{rec['final_loss']:.4f}, {rec['wall_seconds']:.0f} s training"
        + (f" (stopped by the deadline at step {stop.stopped_at})" if stop.stopped_at else ""))  # fmt: skip
    if args.tar_to:  # now, not at the end: a GRPO step that overruns a killing timeout loses only GRPO
        tar_model(out / "sft", Path(args.tar_to) / "sft.tar")
    summary = {"budget": args.budget, "sft_ms_per_step_probe": round(per_step * 1000, 2), "sft": rec}
    (out / "lease.json").write_text(json.dumps(summary, indent=1))
    if time.time() > start + args.budget - 60:
        say("no time left for GRPO")
        return 0

    gopts = grpo.GRPOOptions(
        out=str(out / "grpo"), init_from=str(out / "sft"), task="countdown",
        task_options={"count": "3-4"}, examples=8 * args.grpo_steps, steps=args.grpo_steps,
        num_generations=8, batch_size=8, lr=1e-4, max_completion_length=900, temperature=0.8,
        beta=0.0, format_reward=0.0, seed=0, device=args.device, save_every=50, keep_checkpoints=2,
    )  # fmt: skip
    say(grpo_command(gopts))
    stop = Deadline(start + args.budget - 25)
    grec = grpo.train_grpo(gopts, command=grpo_command(gopts), progress=False, callbacks=[stop], say=say)
    reached = grec["global_step"]
    say(f"GRPO done: step {reached} of {args.grpo_steps}, reward {grec['reward_first']:.3f} -> "
        f"{grec['reward_last']:.3f} (means of the first and last {grec['window_steps']} steps), "
        f"{grec['wall_seconds']:.0f} s; `--steps {reached}` with the same --examples reproduces it")  # fmt: skip
    summary.update(seconds=round(time.time() - start, 1), grpo=grec)
    (out / "lease.json").write_text(json.dumps(summary, indent=1))
    if args.tar_to:
        tar_model(out / "grpo", Path(args.tar_to) / "grpo.tar")
        shutil.copy(out / "lease.json", Path(args.tar_to) / "lease.json")
    say(f"all done in {time.time() - start:.0f} s of {args.budget:.0f}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UserError as e:  # an option the trainers refuse (--size, --lr ...)
        print(f"countdown_lease.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
