"""The scorer registry, next to the scorers: ``make_scorer("judge")``, ``make_scorer("prm:PATH")``.

| name        | rates          | costs                   | reads                         |
|-------------|----------------|-------------------------|-------------------------------|
| ``check``   | answers        | nothing                 | the task's grader (an oracle  |
|             |                |                         | where the task has a reference)|
| ``judge``   | answers, steps | one short model call    | the model's Yes/No verdict    |
| ``confidence`` | answers     | nothing                 | DeepConf trace confidence     |
| ``prob``    | answers, steps | nothing                 | mean token probability        |
| ``arith``   | answers, steps | nothing                 | exact equations in the text   |
| ``countdown``| answers, steps| nothing                 | countdown search lines: moves,|
|             |                |                         | numbers left, hits, the answer|
| ``prm:PATH``| answers, steps | one PRM forward pass    | a process reward model        |
| ``tests``   | answers (code) | sandboxed runs          | the prompt's visible examples |

``auto`` is no scorer of its own but a choice made per problem (``verifier_on``): the problem's own
exact step verifier where ponder has one (``countdown`` for a countdown puzzle), else ``judge``.
It is the default verifier of reflect, beam, mcts, deepthink and ``auto``'s hard path, so that a
countdown search is checked line by line without the user naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ponder.problems.base import Problem
from ponder.verify.arith import Arith
from ponder.verify.confidence import ConfidenceScorer, TokenProb
from ponder.verify.countdown_steps import CountdownSteps
from ponder.verify.grade import Check
from ponder.verify.judge import Judge
from ponder.verify.scoring import Scorer
from ponder.verify.visible_tests import VisibleTests

SCORERS: dict[str, Callable[..., Scorer]] = {
    "check": Check,
    "judge": Judge,
    "confidence": ConfidenceScorer,
    "prob": TokenProb,
    "arith": Arith,
    "tests": VisibleTests,
    "countdown": CountdownSteps,
}
NAMES = (*SCORERS, "prm:PATH")
AUTO = "auto"  # the problem's own exact step verifier, else judge (``verifier_on``)
FALLBACK = "judge"


def verifier_on(verifier: str | Scorer, problem: Problem) -> str | Scorer:
    """``verifier`` as it applies to ``problem``: ``auto`` is the problem's exact step verifier
    where ponder has one (``countdown`` for a countdown puzzle with its numbers), else ``judge``;
    anything else is itself."""
    if verifier != AUTO:
        return verifier
    return "countdown" if CountdownSteps().mismatch(problem) is None else FALLBACK


def make_scorer(name: str, level: str | None = None, **options) -> Scorer:
    """Build the scorer ``name`` (or ``prm:PATH``) with ``options`` (its dataclass fields).

    ``level`` ("answer" or "step"): the scorer must be able to rate that; a ValueError says which
    scorers can.
    """
    if name.startswith("prm:") and name[4:].strip():
        from ponder.verify.prm import PRMScorer  # torch is imported only when a PRM is used

        scorer: Scorer = PRMScorer(name[4:].strip(), **options)
    elif name not in SCORERS:
        raise ValueError(f"unknown verifier {name!r}; known: {', '.join(NAMES)}")
    else:
        factory = SCORERS[name]
        try:
            scorer = factory(**options)
        except TypeError as e:  # an option the scorer does not take
            fields = dataclasses.fields(factory) if dataclasses.is_dataclass(factory) else ()
            known = ", ".join(f.name for f in fields if f.init)
            raise ValueError(f"verifier {name!r}: {e}; its options: {known or 'none'}") from e
    if level is not None and level not in scorer.levels:
        able = [n for n, f in SCORERS.items() if level in f().levels] + ["prm:PATH"] * (
            level == "step"
        )
        what = "steps" if level == "step" else "finished answers"
        raise ValueError(
            f"verifier {name!r} cannot rate {what}; use one of {', '.join(able)}"
        )
    return scorer


def resolve_scorer(verifier: str | Scorer, level: str) -> Scorer:
    """A strategy's ``verifier`` field (a name, or a Scorer object passed in Python) as a Scorer
    that rates ``level``. ``auto`` resolves to its fallback, ``judge``: what a strategy checks
    before it knows a problem (``verifier_on`` picks per problem; every choice rates both levels
    and needs no logprobs or samples, as ``judge`` does)."""
    if verifier == AUTO:
        verifier = FALLBACK
    if isinstance(verifier, str):
        return make_scorer(verifier, level=level)
    if level not in verifier.levels:
        raise ValueError(f"verifier {verifier.name!r} cannot rate {level}s")
    return verifier
