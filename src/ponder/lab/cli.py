"""`ponder train`: grow tiny reasoning models. `ponder train sft` fine-tunes on worked traces;
`ponder train grpo` (``lab.grpo_cli``) and `ponder train average` (``lab.average``) sit beside it.

``add_train_commands(sub)`` creates the ``train`` group and returns its subparsers object, so
that other training commands (grpo, ...) are added next to ``sft`` with ``.add_parser``.
torch, transformers and TRL are imported only when a command runs; without them the command
fails in one line that says what to install.
"""

from __future__ import annotations

import argparse
import shlex

from ponder.argtypes import positive_int
from ponder.models import thread_count
from ponder.errors import UserError
from ponder.lab.train_args import count_option, require_train_packages



def add_train_commands(sub) -> argparse._SubParsersAction:
    t = sub.add_parser("train", help="grow tiny reasoning models (sft, grpo, average)")
    tsub = t.add_subparsers(dest="train_command", required=True, parser_class=type(t))

    s = tsub.add_parser(
        "sft", help="supervised fine-tuning on generated worked traces (or a JSONL of rows)"
    )
    s.add_argument("--task", help="add, mul, countdown or sudoku: generated problems with traces")
    s.add_argument("--digits", type=positive_int, help="add/mul: digits per number (default 3)")
    s.add_argument("--count", type=count_option,
                   help="countdown: numbers given (3-5, default 4), or a range such as 3-4")
    s.add_argument("--blanks", type=positive_int, help="sudoku: empty cells (1-16, default 8)")
    s.add_argument(
        "--data", help="JSONL of {prompt, completion} rows (`ponder data synth`) instead of --task"
    )
    s.add_argument("--examples", type=positive_int, default=2000, help="problems (default 2000)")
    s.add_argument("--steps", type=positive_int, default=500, help="optimizer steps (default 500)")
    s.add_argument("--batch-size", type=positive_int, default=32, help="default 32")
    s.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    s.add_argument(
        "--schedule", choices=("constant", "cosine"), default="constant",
        help="learning rate after the warmup: constant (default; keeps the model RL-ready) or cosine",
    )
    s.add_argument("--size", choices=("tiny", "deep", "small"),
                   help="a fresh model's size (default tiny); not with --from")
    s.add_argument("--from", dest="init_from", metavar="DIR", help="start from this HF model dir")
    s.add_argument("--out", required=True, help="output dir: checkpoints and the final HF model")
    s.add_argument("--seed", type=int, default=0, help="problems, initial weights, data order")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s.add_argument("--save-every", type=positive_int, default=100, help="checkpoint every N steps")
    s.add_argument("--keep-checkpoints", type=positive_int, default=2,
                   help="how many of the latest checkpoints to keep (default 2)")
    s.add_argument("--log-every", type=positive_int, default=10, help="log the loss every N steps")
    s.add_argument(
        "--threads", type=positive_int,
        help="torch CPU threads (default $PONDER_THREADS, else all; 1 on a busy shared CPU)",
    )
    s.add_argument(
        "--stop-at-accuracy", type=float, metavar="X",
        help="stop once greedy accuracy on validation problems (another seed) reaches X, e.g. 0.3",
    )  # fmt: skip
    s.add_argument("--validate-every", type=positive_int, default=25, help="with --stop-at-accuracy")
    s.add_argument("--validate-problems", type=positive_int, default=64, help="with --stop-at-accuracy")
    s.add_argument(
        "--check-weight", type=float, default=1.0, metavar="W",
        help="countdown: weigh the tokens that decide whether a result hits the target W times "
        "in the loss (default 1: the plain loss)",
    )
    s.add_argument(
        "--hit-weight", type=float, default=1.0, metavar="W",
        help="countdown: weigh the token that says a result is the target (the o of ok) W times "
        "(default 1)",
    )
    s.add_argument(
        "--micro-batches", type=positive_int, default=1, metavar="K",
        help="run each step's batch as K micro-batches of like lengths: the same step with less "
        "padding, faster on a CPU for traces of mixed lengths (default 1)",
    )
    s.add_argument("--resume", action="store_true", help="continue the run in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train_sft)
    from ponder.lab.average import add_average_command
    from ponder.lab.grpo_cli import add_grpo_command  # it imports this module's helpers

    add_grpo_command(tsub)
    add_average_command(tsub)
    return tsub


def sft_command(opts) -> str:
    """The full command that reproduces ``opts`` (every setting spelled out)."""
    words = ["ponder", "train", "sft"]
    if opts.data is not None:
        words += ["--data", opts.data]
    else:
        words += ["--task", opts.task]
        for key, value in sorted(opts.task_options.items()):
            words += [f"--{key}", str(value)]
        words += ["--examples", str(opts.examples)]
    words += ["--steps", str(opts.steps), "--batch-size", str(opts.batch_size)]
    words += ["--lr", str(opts.lr), "--schedule", opts.schedule]
    words += ["--from", opts.init_from] if opts.init_from else ["--size", opts.size]
    words += ["--out", opts.out, "--seed", str(opts.seed), "--device", opts.device]
    words += ["--save-every", str(opts.save_every), "--log-every", str(opts.log_every)]
    if opts.keep_checkpoints != 2:
        words += ["--keep-checkpoints", str(opts.keep_checkpoints)]
    if opts.check_weight != 1:
        words += ["--check-weight", str(opts.check_weight)]
    if opts.hit_weight != 1:
        words += ["--hit-weight", str(opts.hit_weight)]
    if opts.micro_batches != 1:
        words += ["--micro-batches", str(opts.micro_batches)]
    if opts.stop_at_accuracy is not None:
        words += ["--stop-at-accuracy", str(opts.stop_at_accuracy), "--validate-every",
                  str(opts.validate_every), "--validate-problems", str(opts.validate_problems)]  # fmt: skip
    return shlex.join(words)


def cmd_train_sft(args: argparse.Namespace) -> int:
    require_train_packages()
    from ponder.lab import sft, traces

    options = {k: getattr(args, k) for k in ("digits", "count", "blanks") if getattr(args, k)}
    if args.data and (args.task or options):  # they would be silently dropped, as --size with --from
        given = " ".join(f"--{k} {v}" for k, v in [("task", args.task), *options.items()] if v)
        raise UserError(f"--data {args.data} trains on its own rows, so {given} would be ignored: "
                        "give --task or --data")  # fmt: skip
    opts = sft.SFTOptions(
        out=args.out, task=args.task, task_options=options, data=args.data,
        examples=args.examples, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        schedule=args.schedule, size=args.size, init_from=args.init_from, seed=args.seed, device=args.device,
        save_every=args.save_every, keep_checkpoints=args.keep_checkpoints,
        log_every=args.log_every, resume=args.resume,
        threads=thread_count(args.threads), stop_at_accuracy=args.stop_at_accuracy,
        validate_every=args.validate_every, validate_problems=args.validate_problems,
        check_weight=args.check_weight, hit_weight=args.hit_weight,
        micro_batches=args.micro_batches,
    )  # fmt: skip
    if opts.task is not None:  # an unknown option value surfaces here, before any model work
        traces.make_problems(opts.task, 1, opts.seed, **opts.task_options)
    record = sft.train_sft(opts, command=sft_command(opts), progress=not args.quiet)
    first, final = record.get("first_loss"), record.get("final_loss")
    loss = f"loss {first:.3f} -> {final:.3f}" if first is not None else "no loss logged"
    size = f"{record['parameters']:,} parameters · {record['global_step']} steps"
    took = f"{record['wall_seconds']:.0f} s on {record['device']}"
    print(f"saved hf:{args.out} · {size} · {loss} · {took}")
    if opts.task is not None:
        example = traces.make_problems(opts.task, 1, opts.seed + 1, **opts.task_options)[0]
        print(f"try: ponder solve --model hf:{args.out} {shlex.quote(example.question)}")
    return 0
