"""Where stored countdown samples first go wrong: ``countdown_scaling.py``'s first-flaw table for any
strategy's rows in a results database (one sample per row: greedy ``cot``, with or without the
calculator), on the held-out puzzles those rows are for.

    python benchmarks/countdown_flaws.py DB SPEC [--held-out 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace

from countdown_scaling import failures, held_out

from ponder.bench.store import Store


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("spec", help="the strategy column, e.g. 'cot:max_tokens=900'")
    ap.add_argument("--held-out", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with Store(args.db) as store:
        rows = {r.problem_id: r for run in store.runs() for r in store.rows(run)
                if r.strategy == args.spec}  # fmt: skip
    problems = held_out(args.held_out, args.seed)
    missing = [p.id for p in problems if p.id not in rows]
    if missing:
        sys.exit(f"{args.db} has no {args.spec!r} row for {len(missing)} puzzles (e.g. {missing[0]})")
    counts = failures(problems, SimpleNamespace(rows=[rows[p.id] for p in problems]))
    print("| " + " | ".join(counts) + " |")
    print("| " + " | ".join(map(str, counts.values())) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
