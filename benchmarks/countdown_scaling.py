"""Both scaling laws of a reasoner that searches, on one CPU: countdown, SFT then GRPO.

The lab's countdown model writes a search (``lab.countdown_search``: every move tried, every dead
end left with a visible ``back``), so a larger thinking budget lets it try more, and RL can teach
it to search better. This script measures, on held-out puzzles (``countdown:count=3-4,split=test``,
which no lab run trains on):

1. **train-time**: GRPO from the SFT model (``ponder train grpo``, rewarded by the countdown
   grader), every saved checkpoint evaluated greedily at the largest budget;
2. **test-time**: greedy accuracy against the thinking budget (``cot:max_tokens=B``, B doubling)
   for the SFT and the final GRPO model; the budget cuts the search, and a search cut before its
   hit has no answer. Greedy decoding writes the same tokens whatever the cap, so the sample at
   budget B is the first B tokens of the one at the largest budget: each smaller budget is read
   off that one run (``--budget-runs`` runs each budget instead, to check it);
3. **every strategy** on the final model, through ``benchmarks/sequential_thinking.py`` (cot, vote,
   best_of_n with the exact step verifier, adaptive, confidence, reflect, think, beam, mcts, auto):
   accuracy against mean tokens with its Pareto frontier (``ponder report``'s code).

The SFT model is an input (default the shipped ``lab:countdown-sft``; its own training, longer than
this experiment, is recorded in its ``ponder_train.json``), so that the experiment starts at GRPO.
With ``--strategy-problems 0`` the two curves took 21.0 min on the deep model on 2 cores
(docs/results/countdown_scaling/fast; 49 min before the hf backend's ``decode``), GRPO's sampling
being most of it; the strategies of part 3 take about an hour more, the step-level searches hours.
Writes OUT/countdown_scaling.md with the commands, seeds and wall time, and OUT/budget_curve.png,
OUT/grpo_curve.png, OUT/strategies/ (the report). Every graded puzzle is kept in OUT/evals.sqlite as
it ends (by the weights' hash), so that the same command after an interruption evaluates only what
is missing, and weights evaluated once (a checkpoint GRPO left unchanged) are not run again; it
says how many it read back, whose time the printed total leaves out.

    python benchmarks/countdown_scaling.py --out runs/countdown-scaling [--sft lab:countdown-sft]
        [--grpo-steps 40] [--grpo-step-reward 0] [--held-out 200] [--strategy-problems 200]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from ponder.bench.store import Store
from ponder.errors import UserError
from ponder.lab.evaluate import accuracy
from ponder.lab.runrecord import check_out, make_out
from ponder.models.base import ModelError, Sample
from ponder.models.shipped import shipped_dir
from ponder.problems import load_problems
from ponder.think.sampling import candidate
from ponder.verify.countdown_steps import KINDS, first_flaw
from ponder.verify.grade import check

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_scaling import checkpoints, run  # noqa: E402  (the lab's other experiment's steps)

BUDGETS = (128, 256, 512, 900)  # 900: the context (1024) less the longest prompt, ~ the trace cap


def model_dir(spec: str) -> Path:
    """A directory for ``ponder train grpo --from``: lab:NAME is a shipped checkpoint."""
    return shipped_dir(spec[4:]) if spec.startswith("lab:") else Path(spec.removeprefix("hf:"))


class Evaluations:
    """Greedy evaluations, each puzzle kept in ``OUT/evals.sqlite`` as it is graded (by the weights'
    hash, ``lab.evaluate``), so that a rerun evaluates only what is missing; counts what it read
    back, whose time this run's wall time leaves out."""

    def __init__(self, out: Path) -> None:
        self.store = Store(out / "evals.sqlite")
        self.reused = self.total = 0

    def greedy(self, path: Path, problems: list, budget: int):
        """Greedy at ``budget`` tokens on ``problems``, with a line every 50 puzzles (an
        evaluation of 200 takes minutes on a CPU)."""

        def progress(done: int, total: int) -> None:  # (its first call counts those read back)
            if done % 50 == 0 or done == total:
                print(f"  greedy {path.name} at {budget} tokens: {done}/{total} puzzles", flush=True)

        result = accuracy(f"hf:{path}", problems, f"cot:max_tokens={budget}", concurrency=64,
                          progress=progress, store=self.store)  # fmt: skip
        self.reused += result.reused
        self.total += result.total
        return result


def sampled(row) -> dict:
    """The one sample of a greedy row (its Sampled event)."""
    (event,) = [e for e in row.trace if e.get("type") == "Sampled"]
    return event


def solved_within(problem, row, budget: int, tokenizer) -> bool:
    """Whether greedy decoding capped at ``budget`` tokens solves ``problem``, read off ``row``,
    its greedy sample at a larger cap: the capped sample is that sample's first ``budget`` tokens,
    cut ("length"), so it answers only if those tokens state an answer (``think.sampling``)."""
    event = sampled(row)
    if event["completion_tokens"] <= budget:
        return row.correct
    ids = tokenizer(event["text"], add_special_tokens=False)["input_ids"][:budget]
    cut = Sample(tokenizer.decode(ids), 0, budget, "length")
    return check(problem, candidate(0, cut, problem).answer).ok


def budget_points(
    path: Path, problems: list, result, separately: bool, evals: Evaluations
) -> list[tuple[int, float]]:
    """Accuracy at each of ``BUDGETS``: ``result`` is the run at the largest; the smaller ones are
    read off it, or (``separately``) run each on its own."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    points = []
    for b in BUDGETS[:-1]:
        if separately:
            acc = evals.greedy(path, problems, b).accuracy
        else:
            rows = zip(problems, result.rows, strict=True)
            acc = sum(solved_within(p, r, b, tokenizer) for p, r in rows) / len(problems)
        points.append((b, acc))
    return [*points, (BUDGETS[-1], result.accuracy)]


def mean_success_tokens(result) -> float:
    ok = [r.completion_tokens for r in result.rows if r.correct]
    return sum(ok) / len(ok) if ok else float("nan")


def failures(problems: list, result) -> dict[str, int]:
    """Greedy samples by their first flaw (``verify.countdown_steps.KINDS``), with "solved" and
    "no flaw" (every line holds, the budget or the model ended the search before a hit)."""
    counts = dict.fromkeys(("solved", *KINDS, "no flaw"), 0)
    for problem, row in zip(problems, result.rows, strict=True):
        if row.correct:
            counts["solved"] += 1
            continue
        _, flaw = first_flaw(problem, sampled(row)["text"])
        counts["no flaw" if flaw is None else flaw.kind] += 1
    return counts


def plot(lines: dict[str, list[tuple[float, float]]], path: Path, xlabel: str, title: str,
         log2: bool = False) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=150)
    for label, points in lines.items():
        ax.plot([x for x, _ in points], [100 * y for _, y in points], marker="o", label=label)
    if log2:
        ax.set_xscale("log", base=2)
        ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out accuracy, greedy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sft_provenance(sft: Path) -> str:
    """How the SFT model was made, from its run's ``ponder_train.json``: the folder's own, or for
    a ``checkpoint-N`` inside a run the run's (whose command ran on past step N)."""
    if (sft / "ponder_train.json").is_file():
        record, where = json.loads((sft / "ponder_train.json").read_text()), ""
        steps = record.get("global_step", record.get("config", {}).get("steps"))
    elif sft.name.startswith("checkpoint-") and (sft.parent / "ponder_train.json").is_file():
        record = json.loads((sft.parent / "ponder_train.json").read_text())
        steps = int(sft.name.split("-", 1)[1])
        where = f", a checkpoint of the run that went on to step {record.get('global_step')}"
    else:
        return "no ponder_train.json records how it was trained"
    minutes = record.get("wall_seconds", 0) / 60
    return (f"{steps} steps{where}; the run took {minutes:.0f} min of training, not part of this "
            f"one: `{record.get('command')}`")


def held_out(n: int, seed: int) -> list:
    """The held-out puzzles every countdown benchmark reports on (no lab run trains on them)."""
    return load_problems("countdown", limit=n, seed=10_000 + seed, count="3-4", split="test")


def prepare(out: str, threads: int) -> tuple[Path, list[str]]:
    """torch's threads set, OUT made (a UserError where it cannot be); (OUT, the command prefix
    that runs ``ponder``)."""
    import torch

    path = Path(out)
    check_out(path)
    make_out(path)
    torch.set_num_threads(threads)
    return path, [sys.executable, "-m", "ponder"]


def count(least: int):
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {least}, not {text!r}")
        return value

    return parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/countdown-scaling")
    ap.add_argument("--sft", default="lab:countdown-sft", help="the SFT model: lab:NAME or DIR")
    ap.add_argument("--grpo-steps", type=count(1), default=40)
    ap.add_argument("--grpo-save-every", type=count(1), default=10)
    ap.add_argument("--grpo-lr", default="1e-4")
    ap.add_argument("--grpo-temperature", default="0.8")
    ap.add_argument("--grpo-batch-size", default="8", help="prompts per step (8 samples each)")
    ap.add_argument("--grpo-step-reward", default="0",
                    help="weight of the process reward (ponder train grpo --step-reward; default 0)")
    ap.add_argument("--held-out", type=count(1), default=200, help="problems for the two curves")
    ap.add_argument("--budget-runs", action="store_true",
                    help="run greedy at every budget (default: read the smaller budgets off the "
                         "largest one's samples, which greedy decoding makes the same)")
    ap.add_argument("--strategy-problems", type=count(0), default=200,
                    help="problems for the all-strategies comparison (0: skip it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=count(1), default=2)
    args = ap.parse_args()
    try:
        sft = model_dir(args.sft)
    except ModelError as e:
        ap.error(f"--sft: {e}")
    if not (sft / "config.json").is_file():
        ap.error(f"--sft {args.sft}: {sft} holds no model (no config.json)")
    try:
        out, ponder = prepare(args.out, args.threads)
    except UserError as e:
        ap.error(str(e))
    started = time.perf_counter()
    grpo = out / "grpo"
    commands = []
    grpo_cmd = [*ponder, "train", "grpo", "--from", str(sft), "--task", "countdown",
                "--count", "3-4", "--seed", str(args.seed), "--threads", str(args.threads),
                "--steps", str(args.grpo_steps), "--save-every", str(args.grpo_save_every),
                "--keep-checkpoints", "1000", "--lr", args.grpo_lr,
                "--batch-size", args.grpo_batch_size, "--num-generations", "8",
                "--temperature", args.grpo_temperature, "--max-completion-length", "900",
                "--out", str(grpo), "--resume", "--quiet"]  # fmt: skip
    if float(args.grpo_step_reward):
        grpo_cmd += ["--step-reward", args.grpo_step_reward]
    commands.append(shlex.join(grpo_cmd))
    record_path = grpo / "ponder_train.json"
    trained_before = record_path.is_file() and json.loads(record_path.read_text()).get("finished")
    run(grpo_cmd)
    grpo_record = json.loads((grpo / "ponder_train.json").read_text())
    trained = time.perf_counter() - started

    problems = held_out(args.held_out, args.seed)
    evals = Evaluations(out)
    top = BUDGETS[-1]
    budget_curve: dict[str, list[tuple[float, float]]] = {}
    at_top = {}
    for name, path in (("SFT", sft), ("GRPO", grpo)):
        at_top[name] = evals.greedy(path, problems, top)
        points = budget_points(path, problems, at_top[name], args.budget_runs, evals)
        for b, acc in points:
            print(f"{name} cot:max_tokens={b}: {round(acc * len(problems))}/{len(problems)}",
                  flush=True)  # fmt: skip
        budget_curve[name] = points
    broken = {name: failures(problems, r) for name, r in at_top.items()}
    grpo_curve = [(0, at_top["SFT"].accuracy)]
    for step, path in checkpoints(grpo):
        if step < args.grpo_steps:
            grpo_curve.append((step, evals.greedy(path, problems, top).accuracy))
    grpo_curve.append((args.grpo_steps, at_top["GRPO"].accuracy))
    print("GRPO curve:", grpo_curve, flush=True)
    plot(budget_curve, out / "budget_curve.png", "thinking budget (max tokens, log scale)",
         f"countdown 3-4 numbers, {len(problems)} held-out puzzles: test-time scaling", log2=True)
    plot({"GRPO": grpo_curve}, out / "grpo_curve.png",
         "GRPO steps (train-time compute; step 0 = the SFT model)",
         f"countdown 3-4 numbers, {len(problems)} held-out puzzles, greedy at {top} tokens")

    total = time.perf_counter() - started
    lines = [
        "# Countdown: test-time and train-time scaling on one CPU", "",
        f"seed {args.seed}; {len(problems)} held-out puzzles (countdown:count=3-4,split=test, "
        f"seed {10_000 + args.seed}); {args.threads} threads; GRPO and both curves took "
        f"{total / 60:.1f} min (GRPO {grpo_record.get('wall_seconds', trained):.0f} s)"
        + (", GRPO having been trained before this run and resumed as finished: add its seconds "
           "for the whole experiment." if trained_before else ".")
        + (f" {evals.reused} of the {evals.total} greedy evaluations of a puzzle were read back "
           "from OUT/evals.sqlite (made before, by an interrupted run or for the same weights), "
           "not run in this time." if evals.reused else ""),
        "",
        f"SFT model: `{args.sft}` ({sft_provenance(sft)})", "",
        "Commands:", "", *[f"    {c}" for c in commands], "",
        "## accuracy against the thinking budget (greedy, `cot:max_tokens=B`)", "",
        ("Each budget run on its own (`--budget-runs`)." if args.budget_runs else
         f"Each budget below {top} read off the greedy run at {top}: its first B tokens, as "
         "greedy decoding writes them whatever the cap."), "",
        "| budget | " + " | ".join(budget_curve) + " |", "| --- |" + " --- |" * len(budget_curve),
        *[f"| {b} | " + " | ".join(f"{100 * budget_curve[k][i][1]:.1f}" for k in budget_curve) + " |"
          for i, b in enumerate(BUDGETS)], "",
        f"## accuracy against GRPO steps (greedy, {top} tokens)", "",
        "| GRPO step | accuracy % |", "| --- | --- |",
        *[f"| {s} | {100 * a:.1f} |" for s, a in grpo_curve], "",
        f"mean completion tokens of the solved puzzles at {top}: SFT "
        f"{mean_success_tokens(at_top['SFT']):.0f}, GRPO {mean_success_tokens(at_top['GRPO']):.0f}",
        "", f"## where greedy goes wrong at {top} tokens (the first flawed line of each sample)", "",
        "| model | " + " | ".join(broken["SFT"]) + " |", "| --- |" + " --- |" * len(broken["SFT"]),
        *[f"| {name} | " + " | ".join(map(str, c.values())) + " |" for name, c in broken.items()],
        "", "A loop is a move repeated from the same numbers; \"no flaw\" is a sample whose every "
        "line holds but that ends (budget or end of text) before a hit.",
        "", "![budget](budget_curve.png)", "![grpo](grpo_curve.png)", "",
    ]  # fmt: skip
    summary = {"budget_curve": budget_curve, "grpo_curve": grpo_curve, "failures": broken,
               "minutes": total / 60}  # fmt: skip
    write(out, lines, summary)  # now, so that a cut-short strategies stage loses none of it

    if args.strategy_problems:
        seq_cmd = [sys.executable, str(Path(__file__).with_name("sequential_thinking.py")),
                   "--task", "countdown", "--model", f"hf:{grpo.resolve()}",
                   "--limit", str(args.strategy_problems), "--seed", str(args.seed),
                   "--threads", str(args.threads), "--db", str(out / "strategies.sqlite"),
                   "--out", str(out / "strategies")]  # fmt: skip
        run(seq_cmd)
        report = out / "strategies" / "report.md"
        minutes = (time.perf_counter() - started) / 60
        lines += ["## every strategy on the GRPO model", "", f"    {shlex.join(seq_cmd)}", "",
                  f"(the whole run, this stage included: {minutes:.1f} min)", "",
                  report.read_text() if report.exists() else "(no report written)"]  # fmt: skip
        summary["minutes"] = minutes
        write(out, lines, summary)
    print("\n".join(lines))
    return 0


def write(out: Path, lines: list[str], summary: dict) -> None:
    (out / "countdown_scaling.md").write_text("\n".join(lines) + "\n")
    (out / "countdown_scaling.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ncountdown_scaling.py: interrupted; the same command resumes GRPO from its latest "
              "checkpoint and skips every puzzle already evaluated (OUT/evals.sqlite)", file=sys.stderr)  # fmt: skip
        sys.exit(130)
