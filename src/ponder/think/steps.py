"""Asking a model for one more step of a solution (steps as ``verify.steps`` cuts them).

Step-level strategies (reflect, beam, mcts) extend partial solutions one step at a time: a
request continues the solution so far and stops at the next step boundary.
"""

from __future__ import annotations

from ponder.events import Warned
from ponder.models.base import Request, Sample
from ponder.verify.steps import SPLITS, check_split, mode_for, split_steps, states_answer

__all__ = ["SPLITS", "check_split", "mode_for", "split_steps", "states_answer"]


def step_stops(split: str) -> tuple[str, ...]:
    """Stop strings that end one sampled step."""
    return ("\n",) if split == "line" else ("\n\n", "\nStep ", "\nstep ")


def separator(split: str) -> str:
    """What is put after a sampled step (its stop string was cut off) before the next one."""
    return "\n" if split == "line" else "\n\n"


def step_request(base: Request, prefix: str, split: str, **sampling) -> Request:
    """A request for the next step after ``prefix``: continue it, stop at the step boundary."""
    return base.continuing(prefix, stop=step_stops(split), **sampling)


def ends_solution(step: Sample) -> bool:
    """A sampled step that finishes its solution: it states an answer and was not cut off by its
    token cap (``Answer: (25+7`` is a fragment, not an answer), or it is empty (the model had
    nothing more to write; a backend reports the end of text and a stop string alike)."""
    if not step.text.strip():
        return True
    return step.finish_reason != "length" and states_answer(step.text)


def sampling_split(split: str, scorer_name: str) -> str:
    """The step boundary a step-level search samples to: ``split``, except that ``auto`` is
    ``line`` under the ``countdown`` verifier, which checks a search line by line. ``auto`` can
    only look at text already written, so before sampling it stops at blank lines; a countdown
    search has none, and each "step" ran to ``step_tokens`` as a whole trace."""
    return "line" if split == "auto" and scorer_name == "countdown" else split


def cut_steps_warning(steps: list[Sample], step_tokens: int) -> Warned | None:
    """A warning when sampled steps ran into ``step_tokens`` before their step boundary.

    Such a step is cut mid-step and then treated as a whole one: a separator follows it and the
    verifier rates the fragment (an exact one rejects ``100+8=1`` cut from ``100+8=108``). One
    warning per solve, with the count, so a user whose steps are longer than the cap sees why the
    search went wrong instead of a quietly lower accuracy."""
    cut = sum(s.finish_reason == "length" for s in steps)
    if not cut:
        return None
    return Warned(
        f"{cut} of {len(steps)} sampled steps were cut at step_tokens={step_tokens} before their "
        "step boundary and scored as cut; raise step_tokens above the longest step, or set "
        "split=line if the model writes one step per line"
    )
