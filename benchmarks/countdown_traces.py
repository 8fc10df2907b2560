"""What a countdown model's greedy solves look like: do they search, and soundly?

For each model, greedy (``cot:max_tokens=900``) on the held-out puzzles of the countdown
experiments (``countdown:count=3-4,split=test``, seed 10,000 + SEED), then counts: puzzles solved,
traces with a ``back`` line (at any depth: the search left a dead end), solves with one, sound
solves (every line passes ``verify.countdown_steps``, the step verifier), and solves that skip the
search (the completion starts with ``Answer:``).

    python benchmarks/countdown_traces.py lab:countdown-grpo [hf:DIR ...] [--limit 200] [--seed 0]

With ``--db PATH`` it runs no model: it counts the same for every strategy of every run stored
there (``benchmarks/sequential_thinking.py``'s database), on the text each row chose (the sample
whose answer the row gave: the finished beam, the selected sample, ...).

    python benchmarks/countdown_traces.py --db docs/results/countdown_scaling/verified_beam/strategies.sqlite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ponder.lab.evaluate import accuracy
from ponder.problems import load_problems
from ponder.verify.countdown_steps import first_flaw


def has_back(text: str) -> bool:
    return any(line.lstrip().startswith("back ") for line in text.split("\n"))


def greedy_text(row) -> str:
    return next(e["text"] for e in row.trace if e.get("type") == "Sampled")


def chosen_text(row) -> str:
    """The text a stored row answered with: its first sample that states the row's answer."""
    samples = [e for e in row.trace if e.get("type") == "Sampled"]
    hits = [e["text"] for e in samples if e.get("answer") == row.answer]
    return hits[0] if hits else (samples[-1]["text"] if samples else "")


HEADER = (
    "| {what} | solved | traces with a `back` line | solves with one | sound solves | "
    "solves that skip the search |\n| --- | --- | --- | --- | --- | --- |"
)


def line(what: str, texts: dict[str, str], solved: list[str], by_id: dict) -> str:
    backs = sum(has_back(t) for t in texts.values())
    solved_back = sum(has_back(texts[i]) for i in solved)
    sound = sum(first_flaw(by_id[i], texts[i])[1] is None for i in solved)
    skip = sum(texts[i].lstrip().startswith("Answer:") for i in solved)
    return f"| {what} | {len(solved)} of {len(texts)} | {backs} | {solved_back} | {sound} | {skip} |"


def from_store(path: str, by_id: dict) -> int:
    from ponder.bench.store import Store

    store = Store(path)
    print(HEADER.format(what="run, strategy"))
    for run in store.runs():
        rows = [r for r in store.rows(run) if r.problem_id in by_id]
        for strategy in sorted({r.strategy for r in rows}):
            mine = [r for r in rows if r.strategy == strategy]
            texts = {r.problem_id: chosen_text(r) for r in mine}
            solved = [r.problem_id for r in mine if r.correct]
            print(line(f"{run}, {strategy}", texts, solved, by_id), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="lab:NAME or hf:DIR")
    ap.add_argument("--db", help="count on a stored run's chosen texts instead of running models")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.models and not args.db:
        ap.error("name a model (lab:NAME or hf:DIR) or a stored run's --db")
    problems = load_problems("countdown", limit=args.limit, seed=10_000 + args.seed,
                             count="3-4", split="test")  # fmt: skip
    by_id = {p.id: p for p in problems}
    if args.db:
        if not Path(args.db).is_file():
            ap.error(f"--db {args.db}: no such database")
        return from_store(args.db, by_id)
    import torch

    torch.set_num_threads(args.threads)
    print(HEADER.format(what="model"))
    for model in args.models:
        result = accuracy(model, problems, "cot", max_tokens=900, concurrency=64)
        texts = {row.problem_id: greedy_text(row) for row in result.rows}
        solved = [row.problem_id for row in result.rows if row.correct]
        print(line(model, texts, solved, by_id), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
