"""Does steering samples into different search procedures give voting the diversity it lacks?

Issue 13 asks for diversity "between samples from several such orders rather than from randomness
the model cannot see". The countdown traces name their procedure on the first line (``dfs``,
``near``, ``big``, ``beam``: ``lab.countdown_search.PROCEDURES``), so a sampler can choose the
order outright: start the answer with ``NAME `` and let the model continue greedily. This runs, on
each held-out puzzle, greedy decoding from each procedure's opening and once free (the model picks
its procedure, or answers at once), grades every answer with the countdown grader, and prints per
opening the accuracy and mean completion tokens, then what the answers together would give: a
vote across the openings (answers compared as ``vote`` compares them, ``verify.grade.answer_key``;
a tie goes to the opening listed first) and pass@k (some opening right: what an exact checker
could pick from them), and how the wrong answers spread: how many, how many evaluate to a number
other than the target (a hit declared where there was none, or a slip on the way), and how many
answers each distinct right and wrong answer gathers.

    python benchmarks/countdown_openings.py [--model lab:countdown-grpo] [--held-out 200]
        [--seed 0] [--max-tokens 900] [--threads 2] [--out FILE.json]
    python benchmarks/countdown_openings.py --from FILE.json [--held-out 200] [--seed 0]

``--seed`` is ``countdown_scaling.held_out``'s: 0 the test puzzles every countdown result
reports, 10000 the validation ones (seed 20,000). ``--out`` keeps every answer and text;
``--from`` prints the tables again from such a file, graded again, with no model run.
Departure from a ``vote`` strategy: one greedy sample per opening, not n sampled ones, so the only
diversity is the procedure's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from countdown_scaling import held_out

from ponder.lab.countdown_search import PROCEDURES
from ponder.models.base import Model
from ponder.problems.base import Problem
from ponder.think.base import solve_request
from ponder.think.config import Sampling
from ponder.verify.grade import answer_key, check, read_answer

FREE = "free"  # no opening: the model writes its first line itself
OPENINGS = (FREE, *PROCEDURES)


@dataclass
class Answered:
    opening: str
    text: str  # the opening and what the model wrote after it
    answer: str | None
    ok: bool
    tokens: int  # completion tokens the model wrote (the opening not counted)


async def answer_from(
    model: Model, problem: Problem, opening: str, max_tokens: int, gate: asyncio.Semaphore
) -> Answered:
    """Greedy decoding of ``problem`` from ``opening`` ("free": no opening), graded."""
    request = solve_request(problem, Sampling(max_tokens=max_tokens, temperature=0.0, seed=0))
    prefix = "" if opening == FREE else f"{opening} "
    async with gate:  # the hf backend batches the calls that are waiting together
        sample = (await model.generate(request.continuing(prefix))).samples[0]
    text = prefix + sample.text
    answer = read_answer(problem, text)
    return Answered(opening, text, answer, check(problem, answer).ok, sample.completion_tokens)


def vote(answers: list[Answered], problem: Problem) -> Answered | None:
    """The first answer holding the most votes among ``answers`` (None: none states one)."""
    counts = Counter(answer_key(problem, a.answer) for a in answers if a.answer is not None)
    if not counts:
        return None
    top = max(counts.values())
    stated = [a for a in answers if a.answer is not None]
    return next(a for a in stated if counts[answer_key(problem, a.answer)] == top)


def summary(rows: list[tuple[Problem, list[Answered]]], groups: list[tuple[str, ...]]) -> str:
    """The Markdown tables: each opening alone, then each group of openings together."""
    n = len(rows)
    out = ["| opening | accuracy % | mean completion tokens | states an answer |",
           "| --- | --- | --- | --- |"]  # fmt: skip
    for opening in OPENINGS:
        mine = [a for _, answers in rows for a in answers if a.opening == opening]
        right = sum(a.ok for a in mine)
        tokens = sum(a.tokens for a in mine) / max(1, len(mine))
        said = sum(a.answer is not None for a in mine)
        row = f"| `{opening}` | {100 * right / n:.1f} | {tokens:.0f} | {said} of {len(mine)} |"
        out.append(row)
    out += ["", "| openings | vote % | pass@k % |", "| --- | --- | --- |"]
    for group in groups:
        voted = passed = 0
        for problem, answers in rows:
            mine = [a for a in answers if a.opening in group]
            winner = vote(mine, problem)
            voted += winner is not None and winner.ok
            passed += any(a.ok for a in mine)
        out.append(f"| {' + '.join(group)} | {100 * voted / n:.1f} | {100 * passed / n:.1f} |")
    return "\n".join(out + ["", spread(rows)])


def spread(rows: list[tuple[Problem, list[Answered]]]) -> str:
    """How the answers of all openings spread over right and wrong, distinct answers counted per
    puzzle by ``answer_key``."""
    right = wrong = off_target = distinct_right = distinct_wrong = 0
    for problem, answers in rows:
        stated = [a for a in answers if a.answer is not None]
        right += sum(a.ok for a in stated)
        wrong += sum(not a.ok for a in stated)
        off_target += sum(check(problem, a.answer).reason.startswith("value") for a in stated)
        distinct_right += len({answer_key(problem, a.answer) for a in stated if a.ok})
        distinct_wrong += len({answer_key(problem, a.answer) for a in stated if not a.ok})
    per_right, per_wrong = right / max(1, distinct_right), wrong / max(1, distinct_wrong)
    return (f"Answers: {right} right, {wrong} wrong ({off_target} of them evaluate to a number "
            f"other than the target); {per_right:.2f} answers per distinct right answer, "
            f"{per_wrong:.2f} per distinct wrong one.")  # fmt: skip


def read_back(path: str, problems: list[Problem]) -> list[tuple[Problem, list[Answered]]]:
    """A ``--out`` file's rows, graded again against ``problems`` (the same puzzles, by id)."""
    by_id = {p.id: p for p in problems}
    rows = []
    for kept in json.loads(Path(path).read_text()):
        if kept["id"] not in by_id:
            raise SystemExit(f"{path}: puzzle {kept['id']} is not among these --held-out/--seed "
                             "ones")  # fmt: skip
        problem = by_id[kept["id"]]
        answers = [Answered(a["opening"], a["text"], a["answer"], check(problem, a["answer"]).ok,
                            a["tokens"]) for a in kept["answers"]]  # fmt: skip
        rows.append((problem, answers))
    return rows


async def run_all(model: Model, problems: list[Problem], max_tokens: int, concurrency: int):
    gate = asyncio.Semaphore(concurrency)
    jobs = [answer_from(model, p, o, max_tokens, gate) for p in problems for o in OPENINGS]
    found = await asyncio.gather(*jobs)
    k = len(OPENINGS)
    return [(p, list(found[i * k : (i + 1) * k])) for i, p in enumerate(problems)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lab:countdown-grpo")
    ap.add_argument("--held-out", type=int, default=200, help="puzzles")
    ap.add_argument("--seed", type=int, default=0, help="0: the test puzzles; 10000: validation")
    ap.add_argument("--max-tokens", type=int, default=900)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="a JSON file for every answer and its text")
    ap.add_argument("--from", dest="source", help="print the tables of a --out file; no model run")
    args = ap.parse_args()
    problems = held_out(args.held_out, args.seed)
    groups = [PROCEDURES, OPENINGS]
    if args.source:
        print(f"{args.source}: {len(problems)} held-out countdown puzzles (seed "
              f"{10_000 + args.seed}), graded again\n")  # fmt: skip
        print(summary(read_back(args.source, problems), groups))
        return 0
    import torch

    from ponder.models import resolve

    torch.set_num_threads(args.threads)
    model = resolve(args.model if ":" in args.model else f"hf:{args.model}")
    start = time.perf_counter()
    rows = asyncio.run(run_all(model, problems, args.max_tokens, args.concurrency))
    seconds = time.perf_counter() - start
    print(f"{args.model} on {len(problems)} held-out countdown puzzles (countdown:count=3-4,"
          f"split=test, seed {10_000 + args.seed}), greedy at {args.max_tokens} tokens from each "
          f"opening; {seconds:.0f} s, {args.threads} threads\n")  # fmt: skip
    print(summary(rows, groups))
    if args.out:
        with open(args.out, "w") as f:
            kept = [{"id": p.id, "answers": [asdict(a) for a in answers]} for p, answers in rows]
            json.dump(kept, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
