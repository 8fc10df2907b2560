"""Stopping rules for voting, replayed on samples a stored run already drew: no model runs.

``adaptive`` (``think.adaptive``) draws samples in waves and stops once the leading answer is
ahead of the runner-up with probability >= ``confidence`` (Adaptive-Consistency's Beta rule, the
same ``leader_probability`` here). Where a model's samples rarely agree it draws them all, and a
natural addition is a give-up rule, the futility stop of sequential trials: stop once ``k``
samples hold no answer twice. Whether either rule pays is a question about the samples, so this
replays them: for each problem of a stored ``best_of_n`` or ``vote`` run, its samples in the order
they were drawn, cut wave by wave where each rule would stop, voted with the strategies' own
``candidate`` / ``tally`` / ``leader`` and graded with ``verify.grade.check``. Printed: accuracy and
mean completion tokens per problem for vote over all samples, adaptive's rule, and adaptive's rule
with a give-up at each ``k``. Completion tokens only: a replay cannot know what a shorter run's
prompts would have cost (the hf backend counts the prompt once per sample).

    python benchmarks/replay_stopping.py --db runs/seq-cd.sqlite [--task countdown]
        [--strategy best_of_n] [--wave 4] [--confidence 0.95] [--give-up 4,8,12]
        [--checker countdown]

Where an answer can be checked, a third rule: rejection sampling, waves of ``wave`` until one
holds a sample ``--checker`` passes. ``auto`` tried it, and dropped it, for a probe its checker
rejects whole. The step verifier ``countdown`` passes a sample whose every line and answer hold;
``check`` passes a right answer. Printed beside it: the first k samples, right when the checker
passes one of them (best-of-k by that checker), at each wave.

Departures from a live ``adaptive`` run: it samples at its own temperature (0.7 by default), the
replay reuses the stored run's samples (``best_of_n`` at 0.8 in ``sequential_thinking.py``); and a
live run's waves are requests of their own, each seeded with the seed plus the samples drawn so
far, so even at the same temperature they are other samples than a slice of one ``n=16`` request:
a replay is one more draw of the rule, not the live run's result (on the countdown test puzzles,
wave 3 at 0.6: 23.0% replayed, 30.0% live; docs/results/countdown_scaling/adaptive_validation).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sequential_thinking import held_out  # noqa: E402  (the problems that benchmark ran on)

from ponder.argtypes import positive_int  # noqa: E402
from ponder.bench.store import Store  # noqa: E402
from ponder.errors import UserError  # noqa: E402
from ponder.models.base import Sample  # noqa: E402
from ponder.think.adaptive import leader_probability, top_two  # noqa: E402
from ponder.think.sampling import candidate, leader, tally  # noqa: E402
from ponder.verify.grade import check  # noqa: E402
from ponder.verify.scorers import make_scorer  # noqa: E402


def samples_of(row, problem) -> list:
    """The row's samples as candidates, in the order they were drawn."""
    drawn = [e for e in row.trace if e.get("type") == "Sampled"]
    drawn.sort(key=lambda e: int(e["sample"]))
    return [
        candidate(int(e["sample"]), Sample(e["text"], 0, int(e["completion_tokens"]), e["finish_reason"]), problem)
        for e in drawn
    ]


def stored_pools(db: str, strategy: str, task: str, digits: int = 3) -> tuple[str, list]:
    """The last run of a ``sequential_thinking.py`` database: its name, and for each row whose
    strategy starts with ``strategy``, (problem, the row's samples as candidates, the strategy).
    Exits (status 2) with a one-line message when there is nothing to read."""
    if not Path(db).is_file():
        _fail(f"{db}: no such database")
    try:
        with Store(db) as store:
            runs = store.runs()
            if not runs:
                _fail(f"{db}: no runs stored")
            run = runs[-1]
            config = store.run_info(run)["config"]
            rows = [r for r in store.rows(run) if r.strategy.startswith(strategy)]
    except UserError as e:  # a file that is not SQLite, or not a results database
        _fail(str(e))
    if not rows:
        _fail(f"{db}: run {run} holds no {strategy} rows")
    problems = {p.id: p for p in held_out(task, config["limit"], rows[0].seed, digits)}
    return run, [(problems[r.problem_id], samples_of(r, problems[r.problem_id]), r.strategy) for r in rows]


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def stop_at(cands: list, wave: int, confidence: float, give_up: int = 0) -> int:
    """How many samples a rule draws: waves of ``wave``, checked between waves (``give_up`` 0:
    adaptive's rule alone)."""
    n = 0
    while n < len(cands):
        n = min(n + wave, len(cands))
        votes = tally(cands[:n])
        if votes and leader_probability(*top_two(votes)) >= Fraction(confidence):
            break
        if give_up and n >= give_up and max(votes.values(), default=0) < 2:
            break
    return n


def checked_stop(cands: list, wave: int, passes) -> tuple[bool, int]:
    """Rejection sampling: (a sample passed, how many were drawn), waves of ``wave`` until one
    holds a sample ``passes(candidate)``, or every sample is drawn."""
    n = 0
    while n < len(cands):
        start, n = n, min(n + wave, len(cands))
        if any(passes(c) for c in cands[start:n]):
            return True, n
    return False, n


def outcome(cands: list, n: int, problem) -> tuple[bool, int]:
    """(the vote of the first n samples is right, their completion tokens)."""
    best = leader(tally(cands[:n]))
    tokens = sum(c.sample.completion_tokens for c in cands[:n])
    return (best is not None and check(problem, next(c.answer for c in cands if c.key == best)).ok), tokens


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="a sequential_thinking.py database")
    ap.add_argument("--task", default="countdown", choices=("countdown", "arith"))
    ap.add_argument("--digits", type=int, default=3, help="arith: digits per number")
    ap.add_argument("--strategy", default="best_of_n", help="the stored sampling strategy (prefix)")
    ap.add_argument("--wave", type=positive_int, default=4)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--give-up", default="4,8,12", help="comma-separated k for the give-up rule")
    ap.add_argument("--checker", default="", help="a verifier that rates answers (countdown, "
                    "check): also replay sampling until one passes it, and best-of-k by it")
    args = ap.parse_args()
    try:
        give_ups = [positive_int(k) for k in args.give_up.split(",") if k.strip()]
    except argparse.ArgumentTypeError as e:
        ap.error(f"--give-up: each k: {e}")
    if args.checker:
        try:
            make_scorer(args.checker, level="answer")
        except ValueError as e:  # before the replay, not after its table
            ap.error(f"--checker: {e}")

    run, replayed = stored_pools(args.db, args.strategy, args.task, args.digits)
    rows_strategy = replayed[0][2]
    replayed = [(problem, cands) for problem, cands, _ in replayed]
    most = max(len(c) for _, c in replayed)
    # (label, give_up): None draws every sample; 0 is adaptive's rule alone; k adds the give-up
    rules = [(f"vote over all {most}", None), (f"adaptive (wave {args.wave}, {args.confidence})", 0)]
    rules += [(f"adaptive + give up after {k} with no answer twice", k) for k in give_ups]

    print(f"{run}: {rows_strategy}, {len(replayed)} problems\n")
    print("| rule | accuracy | mean completion tokens | share of all samples' tokens |")
    print("| --- | --- | --- | --- |")
    everything = None
    for label, give_up in rules:
        right = tokens = 0
        for problem, cands in replayed:
            n = len(cands) if give_up is None else stop_at(cands, args.wave, args.confidence, give_up)
            ok, t = outcome(cands, n, problem)
            right, tokens = right + ok, tokens + t
        mean = tokens / len(replayed)
        everything = everything or mean
        print(f"| {label} | {100 * right / len(replayed):.1f}% | {mean:,.0f} | {100 * mean / everything:.0f}% |")
    if args.checker:
        _checked_rules(replayed, args.wave, args.checker)
    return 0


def _checked_rules(replayed: list, wave: int, checker: str) -> None:
    """Rejection sampling and best-of-k by ``checker``, one table."""
    scorer = make_scorer(checker, level="answer")

    def passes(problem, c) -> bool:
        return c.key is not None and asyncio.run(scorer.score(problem, c.attempt, None)).ok

    verdicts = [(cands, [passes(problem, c) for c in cands]) for problem, cands in replayed]
    print(f"\n| rule, by {checker} | accuracy | mean completion tokens |")
    print("| --- | --- | --- |")
    right = tokens = 0
    for cands, ok in verdicts:
        solved, n = checked_stop(list(range(len(cands))), wave, lambda i: ok[i])
        right += solved
        tokens += sum(c.sample.completion_tokens for c in cands[:n])
    print(f"| waves of {wave} until one passes | {100 * right / len(verdicts):.1f}% | "
          f"{tokens / len(verdicts):,.0f} |")
    most = max(len(c) for c, _ in verdicts)
    for k in range(wave, most + 1, wave):
        right = sum(any(ok[:k]) for _, ok in verdicts)
        tokens = sum(c.sample.completion_tokens for cands, _ in verdicts for c in cands[:k])
        print(f"| best of the first {k} | {100 * right / len(verdicts):.1f}% | "
              f"{tokens / len(verdicts):,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
