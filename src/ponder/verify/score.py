"""Score: what every scorer says about one candidate — a graded answer, a rated step, a judged
solution.

One type for the three uses of a verifier (STYLE.md 4): ``verify.check`` grades benchmarks and is
the RL reward, the same scorers select candidates at test time, and step scorers rate partial
solutions. ``usage`` is what scoring itself cost (model calls of a judge, a PRM's forward pass);
zero for checkers that call no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.budget import Usage

PASS = 0.5  # a scorer whose scores are probabilities passes a candidate at this value or above


@dataclass(frozen=True)
class Score:
    """``ok``: the candidate passes (a correct answer, a step that holds); ``value``: higher is
    better, comparable across candidates of one problem (1.0 / 0.0 for exact checkers, a
    probability for judges and PRMs); ``reason``: a short phrase for traces ("uses 7 twice")."""

    ok: bool
    value: float
    reason: str
    usage: Usage = field(default_factory=Usage)
