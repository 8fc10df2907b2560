"""What a countdown model's greedy solves look like: do they search, and soundly?

For each model, greedy (``cot:max_tokens=900``) on the held-out puzzles of the countdown
experiments (``countdown:count=3-4,split=test``, seed 10,000 + SEED), then counts: puzzles solved,
traces with a ``back`` line (at any depth: the search left a dead end), solves with one, sound
solves (every line passes ``verify.countdown_steps``, the step verifier), and solves that skip the
search (the completion starts with ``Answer:``).

    python benchmarks/countdown_traces.py lab:countdown-grpo [hf:DIR ...] [--limit 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

from ponder.lab.evaluate import accuracy
from ponder.problems import load_problems
from ponder.verify.countdown_steps import first_flaw


def has_back(text: str) -> bool:
    return any(line.lstrip().startswith("back ") for line in text.split("\n"))


def greedy_text(row) -> str:
    return next(e["text"] for e in row.trace if e.get("type") == "Sampled")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="lab:NAME or hf:DIR")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    problems = load_problems("countdown", limit=args.limit, seed=10_000 + args.seed,
                             count="3-4", split="test")  # fmt: skip
    by_id = {p.id: p for p in problems}
    print("| model | solved | traces with a `back` line | solves with one | sound solves | "
          "solves that skip the search |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for model in args.models:
        result = accuracy(model, problems, "cot", max_tokens=900, concurrency=64)
        texts = {row.problem_id: greedy_text(row) for row in result.rows}
        solved = [row.problem_id for row in result.rows if row.correct]
        backs = sum(has_back(t) for t in texts.values())
        solved_back = sum(has_back(texts[i]) for i in solved)
        sound = sum(first_flaw(by_id[i], texts[i])[1] is None for i in solved)
        skip = sum(texts[i].lstrip().startswith("Answer:") for i in solved)
        print(f"| {model} | {len(solved)} | {backs} | {solved_back} | {sound} | {skip} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
