"""Supervised fine-tuning (SFT) of a tiny model on worked traces, with TRL's ``SFTTrainer``.

The idea is plain next-token prediction on demonstrations (the "SFT" stage of InstructGPT,
Ouyang et al. 2022), here on the lab's synthetic scratchpad traces (``lab.traces``) or on a JSONL
of prompt/completion rows (``ponder data synth`` output). The dataset is TRL's prompt-completion
form, ``prompt = format.prompt_text(question)`` and ``completion = trace + "Answer: ..." + EOS``, so
the loss covers the completion only (``completion_only_loss`` is TRL's default for this form).

Why ``SFTTrainer`` and not the bare ``Trainer``: it does the prompt/completion masking, EOS
handling and padding for us and runs on CPU as is. Departures from TRL's defaults, all because
the models are tiny and the machine may be a laptop: float32 (no bf16 autocast), no activation
checkpointing, 5% warmup, no weight decay, and by default a *constant* learning rate after the
warmup (``schedule="constant"``; ``"cosine"`` decays to zero). Why constant: a model meant for RL
next must not be annealed into a sharp minimum. Measured on 3-digit addition (tiny model, 400
steps at 3e-3): after a cosine decay, a random or policy-gradient step of norm 0.02 already cost
3-10 points of accuracy and GRPO at any learning rate from 2e-6 to 5e-5 only lowered accuracy;
after a constant schedule, GRPO at 1e-4 took greedy accuracy from 22% to 66% in 100 steps.
On a CPU shared with other jobs,
``threads=1`` (``--threads 1``): torch's default of one thread per core can then run 20x slower,
its threads waiting on each other while the cores are busy elsewhere.

Runs are resumable. Checkpoints go to ``OUT/checkpoint-N`` every ``save_every`` steps (the
``keep_checkpoints`` latest are kept, two by default); ``resume=True`` continues from the latest
complete one (a checkpoint an interruption left half-written is removed), with the optimizer,
scheduler and data order restored, provided every setting matches the run recorded in
``OUT/ponder_train.json``. A finished run is not redone. The final model and tokenizer are saved
in ``OUT`` itself, an ordinary Hugging Face directory: ``ponder solve --model hf:OUT``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ponder.errors import UserError
from ponder.lab.runrecord import (  # noqa: F401 (read_record is re-exported)
    check_resume,
    log_last_step,
    make_out,
    quiet_bars,
    read_record,
    start_record,
    stopped_by_sigterm_as_exit,
    write_record,
)
from ponder.lab import format, traces
from ponder.lab.train_args import check_model_dir

# Settings that must match for --resume to continue a run (steps included: the LR schedule
# depends on it). Device, save_every, keep_checkpoints and resume itself may change between
# sessions.
IDENTITY = ("task", "task_options", "data", "examples", "steps", "batch_size", "lr", "schedule",
            "size", "init_from", "seed", "stop_at_accuracy", "validate_every",
            "validate_problems", "check_weight", "hit_weight", "micro_batches")  # fmt: skip

SCHEDULES = {"constant": "constant_with_warmup", "cosine": "cosine"}  # ours -> transformers' name


@dataclass
class SFTOptions:
    out: str  # output directory: checkpoints, final model, ponder_train.json
    task: str | None = "add"  # a lab task (traces.TASKS); None when ``data`` is given
    task_options: dict = field(default_factory=dict)  # digits / count / blanks
    data: str | None = None  # JSONL of {"prompt", "completion"} rows instead of generated traces
    examples: int = 2000  # generated problems (ignored with ``data``)
    steps: int = 500  # optimizer steps
    batch_size: int = 32
    lr: float = 1e-3  # peak learning rate
    schedule: str = "constant"  # after the warmup: "constant" (RL-ready) or "cosine" (to zero)
    size: str | None = None  # model.SIZES for a fresh model (None: tiny); must be None with init_from
    init_from: str | None = None  # start from this HF directory instead of a fresh model
    seed: int = 0  # problems, initial weights and data order
    device: str = "auto"
    save_every: int = 100  # checkpoint interval in steps
    keep_checkpoints: int = 2  # the latest N checkpoints are kept (a curve over SFT steps wants more)
    log_every: int = 10  # loss logging interval in steps
    resume: bool = False
    threads: int | None = None  # CPU threads for torch (None: torch's default, every core)
    stop_at_accuracy: float | None = None  # stop once greedy validation accuracy reaches this (0-1]
    validate_every: int = 25  # steps between validations (with stop_at_accuracy)
    validate_problems: int = 64  # validation problems (another seed; no training question)
    check_weight: float = 1.0  # loss weight of a countdown result's decision token (lab.check_weight)
    hit_weight: float = 1.0  # loss weight of the decision token at a hit (the "o" of "ok")
    micro_batches: int = 1  # a step's batch run in this many length-sorted pieces (lab.micro_batches)

    def __post_init__(self) -> None:
        if self.data is None and self.task not in traces.TASKS:
            known = ", ".join(traces.TASKS)
            raise UserError(f"--task must be one of {known} (or --data FILE); got {self.task!r}")
        if self.data is not None:
            if not os.path.isfile(self.data):
                raise UserError(f"--data {self.data}: no such file")
            self.task, self.task_options = None, {}
        else:
            allowed = traces.TASK_OPTIONS[self.task]
            extra = sorted(set(self.task_options) - set(allowed))
            if extra:
                raise UserError(
                    f"--{extra[0]} does not apply to task {self.task} (its options: "
                    + ", ".join(f"--{o}" for o in allowed) + ")"
                )
        for name in ("examples", "steps", "batch_size", "save_every", "keep_checkpoints",
                     "log_every", "threads", "validate_every", "validate_problems",
                     "micro_batches"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer")
        if self.batch_size % self.micro_batches:
            raise UserError(f"--micro-batches {self.micro_batches} must divide --batch-size "
                            f"{self.batch_size}")  # fmt: skip
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr must be a positive number; got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        if self.stop_at_accuracy is not None:
            if not 0 < self.stop_at_accuracy <= 1:
                raise UserError(f"--stop-at-accuracy must be in (0, 1]; got {self.stop_at_accuracy}")
            if self.data is not None:
                raise UserError("--stop-at-accuracy needs a generated --task to validate on, not --data")
        for name in ("check_weight", "hit_weight"):
            value = getattr(self, name)
            flag = name.replace("_", "-")
            if not (value > 0 and math.isfinite(value)):
                raise UserError(f"--{flag} must be a positive number; got {value}")
            # other tasks' traces write "=c" too (add's "7+5+0=12 > 2"), where the weight means
            # nothing; a --data file may hold countdown searches (STaR rows), so it is let through
            if value != 1 and self.task not in (None, "countdown"):
                raise UserError(f"--{flag} weighs countdown searches' decisions; --task is {self.task}")
        if self.init_from is not None:
            if self.size is not None:  # the size would be silently ignored
                raise UserError(f"--size {self.size} makes a fresh model; --from {self.init_from} "
                                "starts from that model, whose size is its own: give one of them")  # fmt: skip
            check_model_dir(self.init_from)
        elif self.size is None:
            self.size = "tiny"

    def identity(self) -> dict:
        d = asdict(self)
        for name in ("init_from", "data"):  # as grpo: `--from sft1` and `--from ./sft1` are one start
            if d[name] is not None:
                d[name] = os.path.abspath(d[name])
        if self.stop_at_accuracy is None:  # validation settings change nothing; older runs lack them
            d.pop("validate_every"), d.pop("validate_problems")
        for name in ("check_weight", "hit_weight", "micro_batches"):  # at 1 as before; older runs lack them
            if d[name] == 1:
                d.pop(name)
        return {k: d[k] for k in IDENTITY if k in d}


def build_rows(opts: SFTOptions, eos: str = format.EOS) -> list[dict]:
    """The training rows: prompt/completion strings, the completion ending in EOS."""
    if opts.data is not None:
        # `ponder data synth --keep all` files also hold rejected samples: never train on those
        rows = [r for r in _read_jsonl(opts.data) if r.get("correct", True) is not False]
        if not rows:
            raise UserError(f"--data {opts.data}: no rows marked correct to train on")
    else:
        rows = traces.examples(opts.task, opts.examples, opts.seed, **opts.task_options)
    return [
        {"prompt": r["prompt"], "completion": r["completion"].rstrip() + eos} for r in rows
    ]


def _preprocess_workers(rows: int) -> int | None:
    """Processes for TRL's tokenizing passes: one pass over 18k countdown rows takes ~10 s, so a
    GPU run on a few hundred thousand rows would wait minutes on one core. None (in-process) for
    small sets and small machines, where starting workers costs more than it saves."""
    cores = os.cpu_count() or 1
    if rows < 20_000 or cores <= 2:
        return None
    return min(8, cores)


def _read_jsonl(path: str) -> list[dict]:
    """The rows of a ``--data`` file, read as every other JSONL of ponder is (``.jsonl.gz`` too);
    a row that is not an object with string ``prompt`` and ``completion`` is a one-line error."""
    from ponder.problems.errors import ProblemSetError
    from ponder.problems.jsonl import read_jsonl

    try:
        numbered = read_jsonl(path)
    except ProblemSetError as e:
        raise UserError(f"--data: {e}") from None
    for i, row in numbered:
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
            raise UserError(f"--data {path}: line {i} lacks string 'prompt' and 'completion'")
    return [row for _, row in numbered]


def train_sft(
    opts: SFTOptions, command: str | None = None, progress: bool = True, callbacks=None,
    say=print,
) -> dict:
    """Train (or resume, or find finished) the run in ``opts.out``; returns its record. Without
    ``progress``, no progress bar at all (datasets' and transformers' included)."""
    with quiet_bars(not progress):
        return _train_sft(opts, command, progress, callbacks, say)


def _train_sft(opts: SFTOptions, command, progress: bool, callbacks, say) -> dict:
    import torch
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    from ponder.lab import micro_batches
    from ponder.lab.check_weight import CheckWeights, trainer_class
    from ponder.lab.model import load_start, make_tiny_llama, n_params, pick_device, save, tf32_for
    from ponder.lab.tokenizer import make_char_tokenizer

    out = Path(opts.out)
    device = pick_device(opts.device)
    prev = check_resume(out, opts.identity(), opts.resume, say)
    if prev and prev.get("finished"):
        return prev
    started = start_record(opts.init_from)  # before --out is made: a bad record leaves nothing
    last = get_last_checkpoint(str(out)) if out.is_dir() else None

    if opts.init_from:
        tokenizer, model = load_start(opts.init_from)
    else:
        tokenizer = make_char_tokenizer()
        model = make_tiny_llama(tokenizer, opts.size, seed=opts.seed)
    rows = build_rows(opts, tokenizer.eos_token)
    callbacks = list(callbacks or [])
    stopper = None
    if opts.stop_at_accuracy is not None:
        from ponder.lab.early_stop import StopAtAccuracy, validation_problems

        task, task_opts = opts.task, opts.task_options
        trained_on = {p.question for p in traces.make_problems(task, opts.examples, opts.seed, **task_opts)}
        problems = validation_problems(task, opts.validate_problems, opts.seed, trained_on, **task_opts)
        stopper = StopAtAccuracy(problems, opts.stop_at_accuracy, opts.validate_every, tokenizer,
                                 out / "validation-model", say=say)  # fmt: skip
        callbacks.append(stopper)
    callbacks.append(log_last_step())
    make_out(out)
    record = {
        "command": command,
        "config": opts.identity(),
        "device": device,
        "parameters": n_params(model),
        "rows": len(rows),
        "finished": False,
        "wall_seconds": (prev or {}).get("wall_seconds", 0.0),
        **started,
    }
    write_record(out, record)

    args = SFTConfig(
        output_dir=str(out),
        max_steps=opts.steps,
        **micro_batches.config(opts.batch_size, opts.micro_batches),
        learning_rate=opts.lr,
        lr_scheduler_type=SCHEDULES[opts.schedule],
        warmup_steps=max(1, opts.steps // 20),
        weight_decay=0.0,
        logging_steps=opts.log_every,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=opts.save_every,
        save_total_limit=opts.keep_checkpoints,
        seed=opts.seed,
        data_seed=opts.seed,
        bf16=False,
        tf32=tf32_for(device),
        activation_checkpointing=False,
        use_cpu=device == "cpu",
        disable_tqdm=not progress,
        report_to="none",
        max_length=1024,
        # Not "group_by_length": it makes steps ~3x faster on countdown traces (less padding), but
        # a batch's loss is a mean over its tokens, so batches of short traces weigh each of their
        # tokens several times more than random batches do. A countdown run grouped from step 0
        # learned to stop after its first move (44 tokens a sample, 2/200 held out at steps 600
        # and 1600); ungrouped runs keep searching (issue 13, docs/results/countdown_scaling).
        dataloader_num_workers=0,
        dataset_num_proc=_preprocess_workers(len(rows)),
    )
    trainer = trainer_class(CheckWeights(opts.check_weight, opts.hit_weight))(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    if not progress:  # quiet: not even the Trainer's printing of every logged metrics dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    resume_from = last if opts.resume and last else None
    if resume_from:
        say(f"resuming from {Path(resume_from).name}")
    threads = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    start = time.perf_counter()
    try:
        with stopped_by_sigterm_as_exit():
            trainer.train(resume_from_checkpoint=resume_from)
    finally:  # an interrupted session's time counts too (Ctrl-C, SIGTERM)
        torch.set_num_threads(threads)
        record["wall_seconds"] = round(record["wall_seconds"] + time.perf_counter() - start, 2)
        write_record(out, record)

    save(trainer.model, tokenizer, out)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    record.update(
        finished=True,
        global_step=trainer.state.global_step,
        resumed_from=Path(resume_from).name if resume_from else None,
        first_loss=losses[0][1] if losses else None,
        final_loss=losses[-1][1] if losses else None,
        losses=losses,
    )
    if stopper is not None:
        record.update(validation=stopper.history, stopped_early_at=stopper.stopped_at)
    write_record(out, record)
    return record
