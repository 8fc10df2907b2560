"""What a stored pool of samples holds for voting: no model runs.

Self-consistency (Wang et al. 2023) gains over greedy only where right samples agree with each
other more than wrong ones do. For each stored ``vote`` / ``best_of_n`` strategy of a
``sequential_thinking.py`` database, this reads every row's samples back (``replay_stopping``'s
``samples_of``, the strategies' own ``candidate``), grades each with ``verify.grade.check`` and
prints: per-sample accuracy, pass@n (some sample right: best-of-n with the exact checker), the
vote with the strategies' answer keys, the vote with countdown expressions in a canonical form
(the operands of ``+`` and ``*`` flattened and sorted, so ``(3+7)+25`` and ``25+(7+3)`` are one
answer), how many samples state no answer, and how the right and the wrong samples spread over
distinct answers.

    python benchmarks/vote_pool.py --db DB --strategy SPEC [--strategy SPEC ...] [--task countdown]

Departure from ``vote``: the canonical form is ours, a syntactic equivalence only. Merging more
(two expressions with the same value) would mean evaluating them, which is the exact checker's
work, so it would be best-of-n, not voting.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter

from replay_stopping import stored_pools

from ponder.verify.grade import check


def canonical(expression: str) -> str:
    """An arithmetic expression with ``+`` and ``*`` chains flattened and their operands sorted;
    text that does not parse stays as it is."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return expression

    def form(node: ast.AST) -> str:
        if isinstance(node, ast.BinOp):
            op = type(node.op).__name__
            if op in ("Add", "Mult"):
                terms: list[str] = []

                def gather(n: ast.AST) -> None:
                    if isinstance(n, ast.BinOp) and type(n.op).__name__ == op:
                        gather(n.left)
                        gather(n.right)
                    else:
                        terms.append(form(n))

                gather(node)
                return f"{op}({','.join(sorted(terms))})"
            return f"{op}({form(node.left)},{form(node.right)})"
        if isinstance(node, ast.Constant):
            return repr(node.value)
        return ast.dump(node)

    return form(tree)


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
        for key_of, name in ((lambda c: c.key, "vote"), (lambda c: canonical(c.answer), "canonical vote")):
            votes = Counter(key_of(c) for c, _ in graded if c.key is not None)
            if votes:  # most_common keeps the first-seen answer on a tie, as ``vote`` does
                best = votes.most_common(1)[0][0]
                out[name] += any(ok for c, ok in graded if c.key is not None and key_of(c) == best)
        right_keys |= {(problem.id, canonical(c.answer)) for c, ok in graded if ok}
        wrong_keys |= {(problem.id, canonical(c.answer)) for c, ok in graded if c.key is not None and not ok}
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
    print("| strategy | problems | per sample | pass@n | vote | canonical vote | no answer | "
          "right samples / distinct right answers | wrong samples / distinct wrong answers |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pools in stored:
        s = pool_summary([(problem, cands) for problem, cands, _ in pools])
        wrong = s["samples"] - s["right samples"] - s["no answer"]

        def pct(k: str, of: str = "problems") -> str:
            return f"{100 * s[k] / s[of]:.1f}%"

        print(f"| {pools[0][2]} | {s['problems']} | {pct('right samples', 'samples')} | {pct('pass@n')} | "
              f"{pct('vote')} | {pct('canonical vote')} | {s['no answer']} of {s['samples']} | "
              f"{s['right samples']} / {s['distinct right']} | {wrong} / {s['distinct wrong']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
