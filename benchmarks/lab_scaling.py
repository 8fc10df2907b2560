"""Both scaling laws on a laptop CPU: accuracy against RL steps, and against test-time tokens.

1. SFT a tiny character-level Llama on worked 3-digit additions (`ponder train sft`), stopping
   early on purpose, once greedy accuracy on validation problems reaches --sft-stop-at, so that it
   is right sometimes, not always (a fixed step count lands anywhere from 7% to 26% on different
   CPUs: accuracy climbs steeply there).
2. GRPO from that checkpoint (`ponder train grpo`), rewarded by ponder's verifier; every saved
   checkpoint is evaluated greedily on held-out problems (never seen in training).
3. Test-time compute on the final model: cot (greedy), vote:n=4, vote:n=16, best_of_n (DeepConf
   confidence as the verifier: a tiny model is no judge) and adaptive, on the same held-out set.

Writes OUT/train_curve.png, OUT/report/ (the bench report: accuracy vs tokens with its Pareto
frontier) and OUT/scaling.md. Every command it runs is printed and recorded. Every graded problem
is kept in OUT/evals.sqlite as it ends (by the weights' hash): after an interruption the same
command evaluates only what is missing.

    python benchmarks/lab_scaling.py --out runs/lab-scaling [--sft-stop-at 0.35] [--grpo-steps 100]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ponder.bench.report import summarize, write_report
from ponder.bench.store import Store
from ponder.errors import UserError
from ponder.lab.evaluate import accuracy
from ponder.lab.runrecord import check_out, make_out
from ponder.lab.traces import make_problems

TEST_TIME = ["cot", "vote:n=4,temperature=0.8", "vote:n=16,temperature=0.8",
             "best_of_n:n=8,verifier=confidence,temperature=0.8",
             "adaptive:wave=4,max_samples=16,temperature=0.8"]  # fmt: skip


def run(cmd: list[str]) -> float:
    """Run ``cmd``; one that fails (its own error printed above) or is interrupted ends the
    running script (this one, or ``countdown_scaling.py``, which shares it) with its exit status
    and one line, not a traceback."""
    print("$ " + shlex.join(cmd), flush=True)
    start = time.perf_counter()
    code = subprocess.run(cmd).returncode
    if code:
        what = " ".join(cmd[3:5]) if cmd[1:3] == ["-m", "ponder"] else Path(cmd[1]).name
        print(f"{Path(sys.argv[0]).name}: `{what}` " + ("was interrupted; the same command resumes"
              if code in (130, -2) else f"failed (exit {code}); its error is above"),
              file=sys.stderr)  # fmt: skip
        raise SystemExit(code if code > 0 else 130)
    return time.perf_counter() - start


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = [(int(p.name.split("-")[1]), p) for p in out.glob("checkpoint-*") if p.is_dir()]
    return sorted(found)


def plot_curve(points: list[tuple[int, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=150)
    ax.plot([s for s, _ in points], [100 * a for _, a in points], marker="o")
    ax.set_xlabel("GRPO steps (train-time compute; step 0 = the SFT checkpoint)")
    ax.set_ylabel("held-out accuracy, greedy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/lab-scaling")
    ap.add_argument("--sft-steps", type=int, default=1000, help="at most (see --sft-stop-at)")
    ap.add_argument("--sft-stop-at", type=float, default=0.35,
                    help="stop SFT at this greedy validation accuracy; 0: run all --sft-steps")
    ap.add_argument("--sft-schedule", default="constant", choices=("constant", "cosine"))
    ap.add_argument("--grpo-steps", type=int, default=100)
    ap.add_argument("--grpo-save-every", type=int, default=25)
    ap.add_argument("--grpo-lr", default="1e-4")  # needs the constant SFT schedule (see lab.sft)
    ap.add_argument("--grpo-temperature", default="0.7")
    ap.add_argument("--grpo-beta", default="0", help="KL penalty to the SFT model")
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    try:
        check_out(out)
        make_out(out)
    except UserError as e:
        ap.error(str(e))
    ponder = [sys.executable, "-m", "ponder"]
    started = time.perf_counter()
    sft, grpo = out / "sft", out / "grpo"
    common = ["--task", "add", "--digits", "3", "--seed", str(args.seed), "--threads", str(args.threads)]
    sft_s = run([*ponder, "train", "sft", *common, "--examples", "5000", "--steps", str(args.sft_steps),
                 "--batch-size", "32", "--lr", "3e-3", "--schedule", args.sft_schedule, "--save-every", str(args.sft_steps),
                 "--out", str(sft), "--resume", "--quiet",
                 *(["--stop-at-accuracy", str(args.sft_stop_at)] if args.sft_stop_at else [])])  # fmt: skip
    grpo_s = run([*ponder, "train", "grpo", "--from", str(sft), *common, "--steps", str(args.grpo_steps),
                  "--save-every", str(args.grpo_save_every), "--keep-checkpoints", "1000",
                  "--lr", args.grpo_lr, "--temperature", args.grpo_temperature,
                  "--beta", args.grpo_beta, "--out", str(grpo),
                  "--resume", "--quiet"])  # fmt: skip

    # training time as recorded by the runs themselves (a resumed or finished run reports its total)
    sft_record = json.loads((sft / "ponder_train.json").read_text())
    sft_s, sft_steps = sft_record.get("wall_seconds", sft_s), sft_record.get("global_step", args.sft_steps)
    grpo_s = json.loads((grpo / "ponder_train.json").read_text()).get("wall_seconds", grpo_s)

    # held-out: another seed than training's, minus any question SFT happened to train on
    seen = {p.question for p in make_problems("add", 5000, seed=args.seed, digits=3)}
    fresh = make_problems("add", args.held_out + 50, seed=10_000 + args.seed, digits=3)
    held_out = [p for p in fresh if p.question not in seen][: args.held_out]
    # every graded problem is kept, by the weights' hash: a rerun evaluates only what is missing
    evals, reused = Store(out / "evals.sqlite"), []

    def evaluate(path: Path, **kw):
        result = accuracy(str(path), held_out, store=evals, **kw)
        reused.append((result.reused, result.total))
        return result

    curve = [(0, evaluate(sft).accuracy)]
    for step, path in checkpoints(grpo):
        curve.append((step, evaluate(path).accuracy))
    if not curve or curve[-1][0] != args.grpo_steps:
        curve.append((args.grpo_steps, evaluate(grpo).accuracy))
    print("RL curve:", curve, flush=True)
    plot_curve(curve, out / "train_curve.png", "tiny Llama (0.87M params), 3-digit addition, GRPO")

    # The report's database is rebuilt from the evaluations (kept in evals.sqlite by the weights'
    # hash): weights a rerun retrained under the same path must not keep the old model's rows here
    # (the store never writes a cell twice).
    (out / "testtime.sqlite").unlink(missing_ok=True)
    store = Store(out / "testtime.sqlite")
    run_name = "lab-testtime"
    store.open_run(run_name, {"task": "lab add:digits=3 held-out", "model": str(grpo),
                              "strategies": TEST_TIME}, "lab_scaling", {"backend": "hf", "path": str(grpo)})
    for spec in TEST_TIME:
        result = evaluate(grpo, strategy=spec, max_tokens=96, seed=args.seed)
        for row in result.rows:
            row.run = run_name
            store.add(row)
        print(f"{spec}: {result.correct}/{result.total}", flush=True)
    stats = summarize(store.rows(run_name))
    report = write_report(store, [run_name], out / "report")
    store.close()
    evals.close()

    total = time.perf_counter() - started
    stop_note = f", stopped at {100 * args.sft_stop_at:.0f}% validation accuracy" if args.sft_stop_at else ""
    lines = [
        "# Lab scaling (SFT -> GRPO -> test-time compute), measured on this machine", "",
        f"seed {args.seed}; held-out: {args.held_out} unseen 3-digit additions; "
        f"SFT {sft_steps} steps ({sft_s:.0f} s{stop_note}), GRPO {args.grpo_steps} steps ({grpo_s:.0f} s); "
        f"total {total / 60:.1f} min"
        + (f"; {sum(r for r, _ in reused)} of the {sum(t for _, t in reused)} evaluations of a "
           "problem were read back from OUT/evals.sqlite, not run in this time"
           if any(r for r, _ in reused) else ""), "",
        "## accuracy against RL steps (greedy)", "", "| GRPO step | accuracy % |", "| --- | --- |",
        *[f"| {s} | {100 * a:.1f} |" for s, a in curve], "",
        "## accuracy against test-time tokens (final GRPO model)", "",
        "| strategy | accuracy % | 95% CI | mean tokens |", "| --- | --- | --- | --- |",
        *[f"| {s.label} | {100 * s.accuracy:.1f} | {100 * s.ci_low:.1f}-{100 * s.ci_high:.1f} | "
          f"{s.mean_tokens:,.0f} |" for s in stats],
        "", "![RL curve](train_curve.png)", f"![test-time]({report.plots[0].relative_to(out)})",
    ]  # fmt: skip
    (out / "scaling.md").write_text("\n".join(lines) + "\n")
    (out / "scaling.json").write_text(json.dumps({"curve": curve, "minutes": total / 60}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\nlab_scaling.py: interrupted; the same command resumes the training from its latest "
              "checkpoint and skips every problem already evaluated (OUT/evals.sqlite)", file=sys.stderr)  # fmt: skip
        sys.exit(130)
