"""The hf backend's decoding on a CPU: its row-dropping loop and prefix cache against generate.

Five sides: ``decode``, the backend's default on a CPU (``models.hf_decode.decode``: finished rows
leave the batch; ``kv_prefix.PrefixStaticCache``: preallocated, attention over the written positions
only); ``prefix``, transformers' ``generate`` on that prefix cache (every row runs until the last
one ends); ``static``, ``generate`` on transformers' ``StaticCache`` (preallocated, attention over
every position); ``dynamic``, ``generate`` on transformers' default cache (grows by concatenation);
``one_batch``, the default decoding with every request kept in one batch, as before the backend
split a request too large for one static cache (``HFModel._part_rows``): where its cache would pass
``kv_prefix.STATIC_CACHE_BYTES`` it decodes on transformers' growing cache. Each side is its own
process (``--side``), which loads the model, runs greedy ``cot`` on the same held-out countdown
puzzles through ``ponder.bench`` (all puzzles in flight at once, so the backend batches them as a
benchmark does) and prints its wall time, accuracy and a digest of every answer. Rounds run the
sides in turn, and each speed-up is taken within a round, so a change in the machine's load hits
both sides of a ratio alike. Reported: per side the median and min-max seconds, the default's
speed-up over each other side (median and min-max), and whether every side gave the same answers
(greedy; the sides differ in floating-point order only).

    python benchmarks/hf_static_cache.py [--model lab:countdown-grpo] [--limit 64] [--rounds 3]
        [--threads 1] [--max-tokens 900 | --strategy SPEC]
        [--sides decode,prefix,static,dynamic,one_batch] [--json FILE]

``--strategy`` times another strategy than greedy ``cot:max_tokens=N`` (e.g. a step-level
``beam``, which makes many short calls); a sampling strategy draws the same samples on every
side (the backend's per-request generators), so the answers' digest must still agree, except
``one_batch``'s: a split request's parts are seeded apart, so it draws other samples.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import time

SIDES = ("decode", "prefix", "static", "dynamic", "one_batch")


def measure(side: str, model_spec: str, limit: int, threads: int | None, spec: str) -> dict:
    from ponder.bench.runner import Cell, run_cell
    from ponder.budget import Budget
    from ponder.models import resolve
    from ponder.problems import load_problems
    from ponder.think import parse_strategy

    from ponder.models import hf

    if side != "decode":  # generate, as for a generation config that decode does not cover
        hf._decode_fits = lambda config: False
    if side == "static":  # transformers' StaticCache in place of the backend's prefix cache
        hf.prefix_cache_kwargs = lambda model, length: {"cache_implementation": "static"}
    # The backend's own cache choice (static where it fits) on every side but ``dynamic``.
    model = resolve(model_spec, threads=threads, static_cache=False if side == "dynamic" else None)
    if side == "one_batch":  # no request is split: each runs as one batch, as it did
        model._part_rows = lambda rows, length: rows
    problems = load_problems("countdown", limit=limit, seed=10_000, count="3-4", split="test")
    strategy = parse_strategy(spec)

    async def run_all():
        cells = [Cell(p, strategy, Budget(), seed=0) for p in problems]
        return await asyncio.gather(*(run_cell("cache", c, model) for c in cells))

    start = time.perf_counter()
    rows = asyncio.run(run_all())
    seconds = time.perf_counter() - start
    answers = "\n".join(f"{r.problem_id}\t{r.answer}" for r in rows)
    return {
        "side": side, "seconds": round(seconds, 2), "correct": sum(r.correct for r in rows),
        "problems": len(rows), "completion_tokens": sum(r.completion_tokens for r in rows),
        "answers_sha256": hashlib.sha256(answers.encode()).hexdigest()[:16],
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lab:countdown-grpo")
    ap.add_argument("--limit", type=int, default=64, help="held-out puzzles (default 64)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=900, help="greedy cot's cap")
    ap.add_argument("--strategy", help="time this strategy instead of cot:max_tokens=N")
    ap.add_argument("--sides", default=",".join(SIDES), help="which caches, in the order run")
    ap.add_argument("--json", help="write every measurement and the summary here")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args()
    spec = args.strategy or f"cot:max_tokens={args.max_tokens}"
    if args.side:
        print(json.dumps(measure(args.side, args.model, args.limit, args.threads, spec)))
        return 0
    sides = args.sides.split(",")
    if "decode" not in sides or not set(sides) <= set(SIDES) or len(set(sides)) != len(sides):
        ap.error(f"--sides: decode and any of the others, each once: {', '.join(SIDES)}")
    runs: list[dict] = []
    for r in range(args.rounds):
        for side in sides:
            cmd = [sys.executable, __file__, "--side", side, "--model", args.model, "--limit",
                   str(args.limit), "--threads", str(args.threads), "--strategy", spec]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            m = json.loads(out.strip().splitlines()[-1]) | {"round": r}
            runs.append(m)
            print(f"round {r} {side:8s} {m['seconds']:8.1f} s  {m['correct']}/{m['problems']} right  "
                  f"{m['completion_tokens']:,} tokens  answers {m['answers_sha256']}", flush=True)  # fmt: skip
    by = {s: [m for m in runs if m["side"] == s] for s in sides}

    def spread(xs: list[float]) -> dict:
        return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3)}

    speedup = {
        other: spread([o["seconds"] / d["seconds"] for d, o in zip(by["decode"], by[other])])
        for other in sides if other != "decode"
    }
    same = len({m["answers_sha256"] for m in runs}) == 1
    summary = {
        "model": args.model, "limit": args.limit, "threads": args.threads, "strategy": spec,
        "seconds": {s: spread([m["seconds"] for m in ms]) for s, ms in by.items()},
        "decode_speedup_over": speedup, "same_answers": same,
    }  # fmt: skip
    print()
    for other, sp in speedup.items():
        print(f"decode's speed-up over {other} ({other} s / decode s, per round): median "
              f"{sp['median']:.2f}x, min-max {sp['min']:.2f}-{sp['max']:.2f}x")
    print(f"same answers on every side: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
