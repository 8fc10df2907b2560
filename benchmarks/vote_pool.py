"""What a stored pool of samples holds for voting: no model runs.

Self-consistency (Wang et al. 2023) gains over greedy only where right samples agree with each
other more than wrong ones do. For each stored ``vote`` / ``best_of_n`` strategy of a
``sequential_thinking.py`` database, this reads every row's samples back (``replay_stopping``'s
``samples_of``, the strategies' own ``candidate``), grades each with ``verify.grade.check`` and
prints: per-sample accuracy, pass@n (some sample right: best-of-n with the exact checker), the
vote on the answers as text (``normalize_answer``, which ``vote`` used until stop 52), the vote
with the strategies' answer keys (``verify.grade.answer_key``: a countdown expression up to the
order of its terms and factors, so ``(3+7)+25`` and ``25+(7+3)`` are one answer), how many samples
state no answer, and how the right and the wrong samples spread over distinct answers (by the
strategies' keys).

    python benchmarks/vote_pool.py --db DB --strategy SPEC [--strategy SPEC ...] [--task countdown]

The key is a syntactic equivalence only. Merging more (two expressions with the same value) would
mean evaluating them, which is the exact checker's work, so it would be best-of-n, not voting.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from replay_stopping import stored_pools

from ponder.verify.grade import check
from ponder.verify.normalize import normalize_answer


def pool_summary(pools: list) -> dict:
    """The figures of one strategy's pools: [(problem, candidates), ...]."""
    out = Counter(problems=len(pools))
    right_keys: set = set()
    wrong_keys: set = set()
    for problem, cands in pools:
        graded = [(c, c.key is not None and check(problem, c.answer).ok) for c in cands]
        out["samples"] += len(cands)
        out["right samples"] += sum(ok for _, ok in graded)
        out["no answer"] += sum(c.key is None for c in cands)
        out["pass@n"] += any(ok for _, ok in graded)
        keys = ((lambda c: normalize_answer(c.answer), "text vote"), (lambda c: c.key, "vote"))
        for key_of, name in keys:
            votes = Counter(key_of(c) for c, _ in graded if c.key is not None)
            if votes:  # most_common keeps the first-seen answer on a tie, as ``vote`` does
                best = votes.most_common(1)[0][0]
                out[name] += any(ok for c, ok in graded if c.key is not None and key_of(c) == best)
        right_keys |= {(problem.id, c.key) for c, ok in graded if ok}
        wrong_keys |= {(problem.id, c.key) for c, ok in graded if c.key is not None and not ok}
    out["distinct right"], out["distinct wrong"] = len(right_keys), len(wrong_keys)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="a sequential_thinking.py database")
    ap.add_argument("--strategy", action="append", required=True, help="a stored strategy (prefix)")
    ap.add_argument("--task", default="countdown", choices=("countdown", "arith"))
    ap.add_argument("--digits", type=int, default=3, help="arith: digits per number")
    args = ap.parse_args()
    stored = [stored_pools(args.db, spec, args.task, args.digits)[1] for spec in args.strategy]
    print("| strategy | problems | per sample | pass@n | vote by text | vote | no answer | "
          "right samples / distinct right answers | wrong samples / distinct wrong answers |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pools in stored:
        s = pool_summary([(problem, cands) for problem, cands, _ in pools])
        wrong = s["samples"] - s["right samples"] - s["no answer"]

        def pct(k: str, of: str = "problems") -> str:
            return f"{100 * s[k] / s[of]:.1f}%"

        print(f"| {pools[0][2]} | {s['problems']} | {pct('right samples', 'samples')} | {pct('pass@n')} | "
              f"{pct('text vote')} | {pct('vote')} | {s['no answer']} of {s['samples']} | "
              f"{s['right samples']} / {s['distinct right']} | {wrong} / {s['distinct wrong']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
