"""Parallel-thinking strategies on a SIMULATED sampler: accuracy and mean tokens, in one run.

SIMULATED: no language model is involved. Each problem has a known answer distribution (the right
answer with probability p, three distractors sharing the rest), drawn once from a fixed seed:
30% easy (p in [0.7, 0.95]), 40% medium ([0.35, 0.7]), 30% hard ([0.05, 0.35]). A "sample" is
120-300 filler tokens ending in \\boxed{answer}. Token confidences are simulated as DeepConf
reports them for real models: right traces are on average more confident, wrong ones have a
40-token low-confidence dip. The judge is right 80% of the time. The statistics of vote, adaptive,
confidence, best_of_n and deepthink are exercised exactly as on a real model (same code, same
budgets, same usage accounting); the absolute numbers say nothing about any real model.

    python benchmarks/parallel_thinking.py [--problems 200] [--out reports/parallel-simulated]

Writes the table to stdout and a report (Markdown, HTML, plot) through `ponder report`'s code.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ponder.bench.report import summarize, write_report
from ponder.bench.runner import grid, run_local
from ponder.bench.store import Store
from ponder.budget import Budget
from ponder.models import Request, ScriptedModel, ScriptedReply
from ponder.problems.base import Problem
from ponder.think import parse_strategy
from ponder.verify.judge import JUDGE_SYSTEM

STRATEGIES = [
    "vote:n=1", "vote:n=4", "vote:n=8", "vote:n=16",
    "adaptive:max_samples=16",
    "confidence:max_samples=16",
    "best_of_n:n=8,verifier=judge",
    "deepthink:agents=4",
]
TOP_K = 5


@dataclass
class SimProblem:
    problem: Problem
    answers: list[str]  # the right answer first
    weights: list[float]


def make_problems(count: int, seed: int) -> list[SimProblem]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        r = rng.random()
        p = rng.uniform(0.7, 0.95) if r < 0.3 else rng.uniform(0.35, 0.7) if r < 0.7 else rng.uniform(0.05, 0.35)
        split = [rng.random() for _ in range(3)]
        rest = [(1 - p) * s / sum(split) for s in split]
        truth = str(100 + i)
        wrong = [str(1000 + 10 * i + k) for k in range(3)]
        question = f"Simulated problem {i}: what is the hidden number #{i}?"
        out.append(SimProblem(Problem(f"sim-{i}", question, truth, kind="exact"), [truth, *wrong], [p, *rest]))
    return out


def simulated_model(problems: list[SimProblem], seed: int) -> ScriptedModel:
    by_question = {sp.problem.question: sp for sp in problems}

    def find(request: Request) -> SimProblem | None:
        text = "\n".join(m["content"] for m in request.messages or ())
        return next((sp for q, sp in by_question.items() if q in text), None)

    def reply(request: Request, index: int) -> ScriptedReply:
        rng = random.Random(f"{seed}:{request.seed}:{index}")
        sp = find(request)
        msgs = request.messages or ()
        if msgs and msgs[0]["content"] == JUDGE_SYSTEM:  # the LLM judge: right 80% of the time
            said = re.findall(r"\\boxed\{([^}]*)\}", msgs[-1]["content"])
            right = bool(sp and said and said[-1] == sp.answers[0])
            verdict = right if rng.random() < 0.8 else not right
            return ScriptedReply("Yes" if verdict else "No", logprobs=[-rng.uniform(0.05, 0.5)])
        if "approach" in msgs[-1]["content"].lower() and "do not solve" in msgs[-1]["content"].lower():
            words = rng.sample(["casework", "algebra", "invariants", "symmetry", "induction",
                                "counting", "geometry", "parity", "bounds", "recursion"], 3)
            return ScriptedReply(f"Use {words[0]} together with {words[1]} and check by {words[2]}.")
        if sp is None:
            return ScriptedReply("I cannot tell. \\boxed{0}")
        answer = rng.choices(sp.answers, sp.weights)[0]
        right = answer == sp.answers[0]
        length = rng.randint(120, 300)
        dip = rng.randrange(0, length - 40) if not right else -100
        tokens, rows = [], []
        for t in range(length):
            spread = rng.gauss(2.2 if right else 1.9, 0.25)
            if dip <= t < dip + 40:
                spread = rng.gauss(1.1, 0.2)
            tokens.append("step")
            rows.append([-0.05 - max(spread, 0.1) * j for j in range(TOP_K)])
        tokens.append(f"\\boxed{{{answer}}}")
        rows.append([-0.05 - 2.0 * j for j in range(TOP_K)])
        text = " ".join(tokens)
        return ScriptedReply(text, logprobs=[r[0] for r in rows], top_logprobs=rows)

    return ScriptedModel(reply, name="SIMULATED-sampler")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="reports/parallel-simulated")
    ap.add_argument("--db", default="runs/simulated.sqlite")
    args = ap.parse_args()

    strategies = [parse_strategy(s) for s in STRATEGIES]
    specs = [s.spec for s in strategies]  # canonical names, as the store keeps them
    sims = make_problems(args.problems, args.seed)
    model = simulated_model(sims, args.seed)
    store = Store(args.db)
    run = f"parallel-simulated-{args.problems}-s{args.seed}"
    config = {"task": "SIMULATED", "model": "SIMULATED-sampler", "strategies": specs,
              "settings": {s.spec: s.settings for s in strategies}}
    store.open_run(run, config, "benchmark", {"backend": "simulated"})
    done = store.done(run)
    cells = [c for c in grid([s.problem for s in sims], strategies, [Budget()], [args.seed]) if c.key not in done]
    print(f"{len(cells)} cells to run (SIMULATED sampler)", file=sys.stderr)
    asyncio.run(run_local(run, cells, model, store.add, concurrency=8))
    stats = {s.label: s for s in summarize(store.rows(run))}
    print(f"\nSIMULATED sampler, {args.problems} problems, seed {args.seed}\n")
    print("| strategy | accuracy % | 95% CI | mean tokens | tokens vs vote:n=16 |")
    print("| --- | --- | --- | --- | --- |")
    ref = stats["vote:n=16"].mean_tokens
    for label in specs:
        s = stats[label]
        print(f"| {label} | {100 * s.accuracy:.1f} | {100 * s.ci_low:.1f}-{100 * s.ci_high:.1f} | "
              f"{s.mean_tokens:,.0f} | {100 * s.mean_tokens / ref:.0f}% |")
    paths = write_report(store, [run], Path(args.out))
    store.close()
    print(f"\nreport: {paths.markdown}\nplot:   {paths.plots[0]}")


if __name__ == "__main__":
    main()
