"""SFT steps on countdown traces: one padded batch against length-sorted micro-batches.

Each side is a real ``ponder train sft`` process (``--micro-batches 1`` against ``K``) on the same
countdown traces, model size, seed and steps, from a fresh model; its time is the training time the
run records (``wall_seconds`` in its ``ponder_train.json``: model loading and tokenizing excluded).
Rounds run the sides in turn and each speed-up is taken within a round, so a change in the
machine's load hits both sides of a ratio alike. The two sides take the same optimizer steps on
the same rows (``lab.micro_batches``; ``tests/test_lab_micro_batches.py`` checks it), so their
losses are printed too: they should agree to float rounding.

    python benchmarks/sft_micro_batches.py [--size small] [--steps 8] [--rounds 2] [--micro-batches 4]
        [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_scaling import run  # noqa: E402  (the one-line error for a failed command)


def one_run(workdir: Path, name: str, size: str, steps: int, k: int, threads: int) -> dict:
    out = workdir / name
    run([sys.executable, "-m", "ponder", "train", "sft", "--task", "countdown", "--count", "3-4",
         "--examples", "4000", "--steps", str(steps), "--batch-size", "32", "--lr", "3e-3",
         "--schedule", "cosine", "--size", size, "--seed", "0", "--device", "cpu",
         "--threads", str(threads), "--save-every", str(steps + 1), "--log-every", "1",
         "--micro-batches", str(k), "--quiet", "--out", str(out)])  # fmt: skip
    record = json.loads((out / "ponder_train.json").read_text())
    return {"seconds": record["wall_seconds"], "loss": record["final_loss"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", choices=("tiny", "deep", "small"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--micro-batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args(argv)
    k = args.micro_batches
    sides = {1: [], k: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for side in (1, k) if r % 2 == 0 else (k, 1):  # alternate which side goes first
                m = one_run(Path(tmp), f"r{r}k{side}", args.size, args.steps, side, args.threads)
                sides[side].append(m)
                print(f"round {r + 1}: --micro-batches {side}: {m['seconds'] / args.steps:.2f} s/step,"
                      f" final loss {m['loss']:.4f}", flush=True)  # fmt: skip
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(sides[1], sides[k])]
    per_step = {s: [m["seconds"] / args.steps for m in ms] for s, ms in sides.items()}
    for s, v in per_step.items():
        print(f"--micro-batches {s}: median {statistics.median(v):.2f} s/step "
              f"(min-max {min(v):.2f}-{max(v):.2f})")  # fmt: skip
    print(f"speed-up of {k} micro-batches: median {statistics.median(ratios):.2f}x "
          f"(min-max {min(ratios):.2f}-{max(ratios):.2f}) over {args.rounds} rounds; "
          f"{args.size}, {args.steps} steps of 32 countdown traces, {args.threads} threads")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "sides": sides, "ratios": ratios},
                                              indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
