"""One round of self-improvement on countdown: the lab model's own verified searches as SFT data.

The idea is STaR (Zelikman et al. 2022, "STaR: Bootstrapping Reasoning With Reasoning"), the
self-improvement step that Stream of Search (Gandhi et al. 2024) ran after training on symbolic
search streams: sample the model on training puzzles, keep the samples that solve them, fine-tune
on those, and measure greedy again. It costs one sampling pass and a short SFT run, so it fits a
CPU where more GRPO steps did not help (``docs/results/countdown_scaling/deep``).

Departures from STaR:

- sampling is ``best_of_n:n=N,verifier=check``: N samples a puzzle at temperature T, and the
  puzzle's own checker (the expression uses the given numbers and equals the target; no reference
  answer) picks one that solves it (``ponder data synth`` keeps it);
- **a kept sample must also be a clean search**: every line passes the countdown step verifier
  (``verify.countdown_steps.first_flaw``: right arithmetic, numbers still available, no missed or
  false hit, no loop). A sample whose answer is right after a slip in an abandoned branch, or a
  missed hit found again later, would teach the slip; STaR keeps it, this script drops it and
  counts it (``--keep-flawed`` keeps it);
- rationalization (``--rationalize``) is not the model asked again with the answer as a hint:
  each puzzle with no clean solving sample gets the symbolic search's own stream instead
  (``lab.traces``, what the SFT model was trained on: honest ``no`` checks and visible ``back``
  lines), since the model's own solving samples alone show only hits. Without it, the failed
  puzzles are left out, as in STaR without rationalization;
- one round (run again with ``--model OUT/sft`` for the next).

Steps (each resumes: a re-run with the same arguments skips what is done):

1. ``ponder data synth`` on ``countdown:count=3-4,split=train`` (never the held-out split);
2. the clean rows to OUT/clean.jsonl;
3. ``ponder train sft --data OUT/clean.jsonl --from MODEL`` for ``--epochs`` passes;
4. greedy on the 200 held-out puzzles of ``countdown_scaling.py`` (``split=test``, seed 10,000) at
   900 tokens for the start and the new model, the budget curve read off it, the first-flaw table
   (each graded puzzle kept in OUT/evals.sqlite, as ``countdown_scaling.py`` does).

Writes OUT/countdown_star.md and .json with the commands and the wall time.

    python benchmarks/countdown_star.py --out runs/countdown-star [--model lab:countdown-grpo]
        [--problems 1500] [--samples 4] [--keep-flawed] [--rationalize] [--epochs 3] [--lr 3e-4]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

from countdown_scaling import (BUDGETS, Evaluations, budget_points, failures, held_out,
                               mean_success_tokens, model_dir, prepare, run)  # fmt: skip

from ponder.lab import format, traces
from ponder.problems import load_problems
from ponder.problems.base import Problem
from ponder.verify.countdown_steps import first_flaw

SYNTH_TASK = "countdown:count=3-4,split=train"


def clean_rows(rows: list[dict], problems: dict[str, Problem], keep_flawed: bool = False):
    """(rows to train on, how many were dropped for a flawed line): a row counts only if it is for
    one of ``problems`` and marked correct, and (unless ``keep_flawed``) its completion, read as a
    search, has no flawed line."""
    kept, flawed = [], 0
    for row in rows:
        problem = problems.get(row.get("problem_id"))
        if problem is None or row.get("correct") is False:
            continue
        if not keep_flawed and first_flaw(problem, row["completion"])[1] is not None:
            flawed += 1
            continue
        kept.append(row)
    return kept, flawed


def solved_by(start: list, tuned: list) -> dict[str, int]:
    """Puzzles solved by both models, only by the start one, only by the tuned one (paired rows)."""
    pairs = list(zip(start, tuned, strict=True))
    return {"both": sum(a.correct and b.correct for a, b in pairs),
            "start": sum(a.correct and not b.correct for a, b in pairs),
            "STaR": sum(b.correct and not a.correct for a, b in pairs)}  # fmt: skip


def model_spec(spec: str) -> str:
    """``ponder``'s spec for the start model: lab:NAME as it is, a directory as hf:DIR."""
    return spec if spec.startswith("lab:") else f"hf:{spec.removeprefix('hf:')}"


def rationalized(problems: list[Problem], kept: list[dict]) -> list[dict]:
    """The symbolic search's trace (``lab.traces``) as a row for each of ``problems`` that no row
    of ``kept`` solves and that a search solves within the traces' cap."""
    done = {r["problem_id"] for r in kept}
    return [{"prompt": format.prompt_text(p.question), "completion": traces.completion(p),
             "problem_id": p.id, "correct": True, "strategy": "symbolic search"}
            for p in problems if p.id not in done and traces.has_trace(p)]  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/countdown-star")
    ap.add_argument("--model", default="lab:countdown-grpo", help="the start model: lab:NAME or DIR")
    ap.add_argument("--problems", type=int, default=1500, help="training puzzles to sample on")
    ap.add_argument("--samples", type=int, default=4, help="samples a puzzle (best_of_n's n)")
    ap.add_argument("--temperature", default="0.8")
    ap.add_argument("--max-tokens", type=int, default=512, help="a sample's cap while sampling")
    ap.add_argument("--synth-seed", type=int, default=7, help="training puzzles and sampling")
    ap.add_argument("--keep-flawed", action="store_true",
                    help="train on every solving sample, as STaR does, not only clean searches")
    ap.add_argument("--rationalize", action="store_true",
                    help="add the symbolic search's trace for each puzzle with no clean solve")
    ap.add_argument("--epochs", type=float, default=3.0, help="passes over the kept rows")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", default="3e-4", help="peak learning rate (cosine after the warmup)")
    ap.add_argument("--held-out", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="the held-out puzzles' seed (10,000 + it)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out, ponder = prepare(args.out, args.threads)
    started = time.perf_counter()
    start = model_dir(args.model)
    synth, clean, tuned = out / "synth.jsonl", out / "clean.jsonl", out / "sft"
    strategy = (f"best_of_n:n={args.samples},verifier=check,max_tokens={args.max_tokens},"
                f"temperature={args.temperature}")  # fmt: skip
    synth_cmd = [*ponder, "data", "synth", "--task", SYNTH_TASK, "--limit", str(args.problems),
                 "--seed", str(args.synth_seed), "--model", model_spec(args.model),
                 "--strategy", strategy, "--threads", str(args.threads), "--concurrency", "32",
                 "--out", str(synth)]  # fmt: skip
    sampled_s = run(synth_cmd)

    train = load_problems("countdown", limit=args.problems, seed=args.synth_seed, count="3-4",
                          split="train")  # fmt: skip
    rows, flawed = clean_rows(read_jsonl(synth), {p.id: p for p in train}, args.keep_flawed)
    own = len(rows)
    if args.rationalize:
        rows += rationalized(train, rows)
    if not rows:
        sys.exit(f"no row of {synth} is a clean solving search: nothing to train on")
    clean.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    steps = max(1, math.ceil(args.epochs * len(rows) / args.batch_size))
    print(f"{len(rows)} rows to train on ({own} the model's, {len(rows) - own} the symbolic "
          f"search's; {flawed} solving samples dropped for a flawed line); "
          f"{steps} steps", flush=True)  # fmt: skip
    sft_cmd = [*ponder, "train", "sft", "--data", str(clean), "--from", str(start),
               "--steps", str(steps), "--batch-size", str(args.batch_size), "--lr", args.lr,
               "--schedule", "cosine", "--seed", "0", "--threads", str(args.threads),
               "--save-every", str(steps), "--out", str(tuned), "--resume", "--quiet"]  # fmt: skip
    trained_s = run(sft_cmd)

    problems = held_out(args.held_out, args.seed)
    results, curves, evals = {}, {}, Evaluations(out)
    for name, path in (("start", start), ("STaR", tuned)):
        results[name] = evals.greedy(path, problems, BUDGETS[-1])
        curves[name] = budget_points(path, problems, results[name], False, evals)
        print(f"{name}: {sum(r.correct for r in results[name].rows)}/{len(problems)}", flush=True)
    broken = {name: failures(problems, r) for name, r in results.items()}
    paired = solved_by(results["start"].rows, results["STaR"].rows)
    total = time.perf_counter() - started

    n = len(problems)
    lines = [
        "# One round of STaR on countdown"
        + ("" if args.keep_flawed else ", clean searches only")
        + (", failed puzzles rationalized by the symbolic search" if args.rationalize else ""), "",
        f"start model `{args.model}`; {args.problems} training puzzles ({SYNTH_TASK}, seed "
        f"{args.synth_seed}); {n} held-out puzzles (countdown:count=3-4,split=test, seed "
        f"{10_000 + args.seed}); {args.threads} threads; {total / 60:.1f} min in all (sampling "
        f"{sampled_s / 60:.1f}, SFT {trained_s / 60:.1f}; a step that had finished before this "
        "run counts only its check)."
        + (f" {evals.reused} of the {evals.total} greedy evaluations of a puzzle were read back "
           "from OUT/evals.sqlite, not run in this time." if evals.reused else ""), "",
        "Commands:", "", f"    {shlex.join(synth_cmd)}", f"    {shlex.join(sft_cmd)}", "",
        f"Rows: {own + flawed} of {args.problems} puzzles solved by some sample; {flawed} "
        f"dropped for a flawed line{' (kept: --keep-flawed)' if args.keep_flawed else ''}; "
        f"{own} of the model's"
        + (f" and {len(rows) - own} of the symbolic search's (`--rationalize`)" if args.rationalize
           else "")
        + f" trained on, {steps} steps of {args.batch_size}.", "",
        "## greedy accuracy against the thinking budget (read off the run at "
        f"{BUDGETS[-1]} tokens), %", "",
        "| budget | " + " | ".join(curves) + " |", "| --- |" + " --- |" * len(curves),
        *[f"| {b} | " + " | ".join(f"{100 * curves[k][i][1]:.1f}" for k in curves) + " |"
          for i, b in enumerate(BUDGETS)], "",
        f"solved at {BUDGETS[-1]}: " + ", ".join(
            f"{k} {sum(r.correct for r in v.rows)}/{n}" for k, v in results.items())
        + f" (both {paired['both']}, only the start model {paired['start']}, only STaR "
        f"{paired['STaR']})",
        "mean completion tokens of the solved puzzles: " + ", ".join(
            f"{k} {mean_success_tokens(v):.0f}" for k, v in results.items()), "",
        f"## where greedy goes wrong at {BUDGETS[-1]} tokens (first flawed line)", "",
        "| model | " + " | ".join(broken["start"]) + " |",
        "| --- |" + " --- |" * len(broken["start"]),
        *[f"| {k} | " + " | ".join(map(str, c.values())) + " |" for k, c in broken.items()], "",
    ]  # fmt: skip
    (out / "countdown_star.md").write_text("\n".join(lines))
    (out / "countdown_star.json").write_text(json.dumps(
        {"rows": len(rows), "own_rows": own, "flawed_dropped": flawed, "steps": steps,
         "budget_curves": curves, "paired": paired, "failures": broken, "minutes": total / 60},
        indent=2))  # fmt: skip
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
