"""`ponder train grpo`: RL from verifier rewards (``lab.grpo``), added to the ``train`` group that
``lab.cli.add_train_commands`` creates. torch and TRL are imported only when the command runs."""

from __future__ import annotations

import argparse
import shlex

from ponder.argtypes import positive_int
from ponder.models import thread_count
from ponder.lab.train_args import count_option, require_train_packages


def add_grpo_command(tsub) -> None:
    g = tsub.add_parser(
        "grpo", help="RL from a checkpoint with GRPO (TRL), rewarded by the task's verifier"
    )
    g.add_argument("--from", dest="init_from", metavar="DIR", required=True,
                   help="the starting HF model dir (e.g. a `ponder train sft` output)")
    g.add_argument("--task", default="add",
                   help="add, mul, countdown or sudoku (default add); with --data, a problem set "
                   "(humaneval, gsm8k, math500, ...)")
    g.add_argument("--data", metavar="FILE",
                   help="train on the problems of FILE (.jsonl/.jsonl.gz) of the set --task, "
                   "rewarded by its grader (humaneval: its tests, run in the sandbox)")
    g.add_argument("--digits", type=positive_int, help="add/mul: digits per number (default 3)")
    g.add_argument("--count", type=count_option,
                   help="countdown: numbers given (3-5, default 4), or a range such as 3-4")
    g.add_argument("--blanks", type=positive_int, help="sudoku: empty cells (1-16, default 8)")
    g.add_argument("--examples", type=positive_int,
                   help="distinct problems (default: steps x batch size, new ones every step)")
    g.add_argument("--steps", type=positive_int, default=100, help="optimizer steps (default 100)")
    g.add_argument("--num-generations", type=int, default=8,
                   help="completions per prompt, the group (default 8, at least 2)")
    g.add_argument("--batch-size", type=positive_int, default=4,
                   help="prompts per step (default 4); a step samples batch-size x num-generations")
    g.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4, constant)")
    g.add_argument("--max-completion-length", type=positive_int, default=128,
                   help="tokens per completion (characters for lab models; default 128)")
    g.add_argument("--temperature", type=float, default=1.0, help="rollout temperature (default 1)")
    g.add_argument("--beta", type=float, default=0.0,
                   help="KL penalty to the starting model (default 0: no reference model)")
    g.add_argument("--format-reward", type=float, default=0.0,
                   help="weight of a reward for ending with an 'Answer: ...' line (default 0)")
    g.add_argument("--step-reward", type=float, default=0.0,
                   help="countdown: weight of a process reward, 1 when the step verifier accepts "
                   "every line and the answer (default 0)")
    g.add_argument("--out", required=True, help="output dir: checkpoints and the final HF model")
    g.add_argument("--seed", type=int, default=0, help="problems, sampling, data order")
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    g.add_argument("--save-every", type=positive_int, default=50, help="checkpoint every N steps")
    g.add_argument("--keep-checkpoints", type=positive_int, default=2,
                   help="how many of the latest checkpoints to keep (default 2)")
    g.add_argument("--threads", type=positive_int,
                   help="torch CPU threads (default $PONDER_THREADS, else all; 1 on a busy shared CPU)")
    g.add_argument(
        "--micro-batches", type=positive_int, default=1, metavar="K",
        help="score each step's rollouts in K pieces (gradient accumulation): the same step in "
        "less memory; K must divide --batch-size (default 1)",
    )
    g.add_argument("--resume", action="store_true", help="continue the run in --out")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_train_grpo)


def grpo_command(opts) -> str:
    """The full command that reproduces ``opts`` (every setting spelled out)."""
    words = ["ponder", "train", "grpo", "--from", opts.init_from, "--task", opts.task]
    if opts.data is not None:
        words += ["--data", opts.data]
    for key, value in sorted(opts.task_options.items()):
        words += [f"--{key}", str(value)]
    for flag, value in (
        ("--examples", opts.examples), ("--steps", opts.steps),
        ("--num-generations", opts.num_generations), ("--batch-size", opts.batch_size),
        ("--lr", opts.lr), ("--max-completion-length", opts.max_completion_length),
        ("--temperature", opts.temperature), ("--beta", opts.beta),
        ("--format-reward", opts.format_reward), ("--out", opts.out), ("--seed", opts.seed),
        ("--device", opts.device), ("--save-every", opts.save_every),
    ):  # fmt: skip
        words += [flag, str(value)]
    if opts.step_reward:
        words += ["--step-reward", str(opts.step_reward)]
    if opts.micro_batches != 1:
        words += ["--micro-batches", str(opts.micro_batches)]
    return shlex.join(words)


def cmd_train_grpo(args: argparse.Namespace) -> int:
    require_train_packages()
    from ponder.lab import grpo, traces

    options = {k: getattr(args, k) for k in ("digits", "count", "blanks") if getattr(args, k)}
    opts = grpo.GRPOOptions(
        out=args.out, init_from=args.init_from, task=args.task, task_options=options,
        examples=args.examples, steps=args.steps, num_generations=args.num_generations,
        batch_size=args.batch_size, lr=args.lr, max_completion_length=args.max_completion_length,
        temperature=args.temperature, beta=args.beta, format_reward=args.format_reward,
        step_reward=args.step_reward,
        seed=args.seed, device=args.device, save_every=args.save_every, resume=args.resume,
        keep_checkpoints=args.keep_checkpoints, data=args.data,
        threads=thread_count(args.threads), micro_batches=args.micro_batches,
    )  # fmt: skip
    if opts.data is None:
        traces.make_problems(opts.task, 1, opts.seed, **opts.task_options)  # bad option values, now
    record = grpo.train_grpo(opts, command=grpo_command(opts), progress=not args.quiet)
    if "reward_first" in record:
        k = record["window_steps"]
        trend = (
            f"reward {record['reward_first']:.3f} -> {record['reward_last']:.3f}, accuracy "
            f"{record['accuracy_first']:.3f} -> {record['accuracy_last']:.3f} (first/last {k} steps)"
        )
    else:
        trend = "no reward logged"
    print(
        f"saved hf:{args.out} · {record['global_step']} steps · {trend}"
        f" · {record['wall_seconds']:.0f} s on {record['device']}"
    )
    return 0
