"""RL rewards built from ponder's verifiers, in TRL's reward-function signature.

A reward is ``reward(prompts, completions, **columns) -> list[float]``: TRL passes every dataset
column (here ``question``, ``answer``, ``kind``, ``meta`` as JSON, optionally ``problem_id``) as a
list with one entry per completion. ``scorer_reward(scorer)`` rebuilds the Problem from those
columns and rates each completion with ``scorer`` — any free scorer of ``verify.scorers`` (one that
calls no model). ``correctness_reward`` is ``scorer_reward`` of the ``check`` scorer: extract the
final answer, then ``verify.check`` — the object that grades ``ponder bench`` and selects in
``best_of_n:verifier=check``. One grader, three uses (STYLE.md 4).

``format_reward`` is 1.0 when the completion ends with an ``Answer: ...`` line (the lab format,
``format.completion_text``); its weight is applied by TRL (``GRPOConfig.reward_weights``).

``steps_reward`` is a process reward for countdown searches, in min form: 1.0 when the countdown
step verifier (``verify.countdown_steps``, the scorer ``verifier=countdown`` of reflect / beam /
mcts) accepts every line — no slip in a move's arithmetic, no number used twice, no false ``ok``,
no loop — and the answer, else 0.0. Added to the correctness reward at a weight, it pays more
for a right answer reached by a sound search than for one reached through wrong lines or
guessed. Why the min and not the share of lines before the first flaw (a mean form, tried first):
the share was gamed at once. Within 40 steps the model learned to follow one path and declare a
hit at its end (``38+4=42 ok``, target 40), putting its one flaw on the last line, and false hits
rose from 31 to 147 of 200 greedy answers (docs/results/countdown_scaling/step_reward). This
repeats what Cheng et al. 2025 ("Stop Summation: Min-Form Credit Assignment Is All Process Reward
Model Needs", PURE) found with learned PRMs. Departure from step-level process supervision
(DeepSeekMath, section 4.1.3): TRL's GRPO scores whole sequences, and the min of exact 0/1 step
scores is one number per completion.

Completions arrive as text (plain-text prompts) or as a list of chat messages (conversational
prompts); both are accepted.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from ponder.problems.base import Problem
from ponder.verify import Attempt, Check, Scorer
from ponder.verify.countdown_steps import CountdownSteps
from ponder.verify.extract import extract_answer

RewardFunc = Callable[..., list[float]]

# The last non-empty line is "Answer: <something>".
_ENDS_WITH_ANSWER = re.compile(r"(?:^|\n)[ \t]*Answer:[ \t]*\S[^\n]*\s*$")


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of one completion: a string, or the content of its last message."""
    if isinstance(completion, str):
        return completion
    if completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"a completion is a string or a list of messages, got {completion!r}")


def problem_from_columns(
    question: str, answer: str | None, kind: str, meta: str | dict | None, problem_id: str = "rl"
) -> Problem:
    """Rebuild a Problem from one dataset row (``meta`` is stored as JSON text: Arrow needs one
    schema per column and meta differs between tasks)."""
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    return Problem(problem_id, question, answer, kind, dict(meta or {}))


def problem_columns(problem: Problem) -> dict[str, Any]:
    """The dataset columns ``problem_from_columns`` reads back."""
    return {
        "problem_id": problem.id,
        "question": problem.question,
        "answer": problem.answer,
        "kind": problem.kind,
        "meta": json.dumps(problem.meta, sort_keys=True),
    }


def scorer_reward(scorer: Scorer) -> RewardFunc:
    """A TRL reward function: each completion's ``scorer`` value (1.0 / 0.0 for exact checkers).

    The scorer must not ask the model being scored (a judge): the trainer has no budget meter or
    inference model for it, and a policy grading itself is not a reward to train on.
    """
    if scorer.calls_model:
        raise ValueError(f"the {scorer.name} scorer calls a model: it cannot be a reward")

    def reward(
        prompts: list,
        completions: list,
        question: list[str],
        answer: list[str | None],
        kind: list[str],
        meta: list[str],
        problem_id: list[str] | None = None,
        **_: Any,
    ) -> list[float]:
        ids = problem_id or [f"rl-{i}" for i in range(len(completions))]
        rows = zip(completions, question, answer, kind, meta, ids, strict=True)
        jobs = []
        for c, q, a, k, m, pid in rows:
            problem, text = problem_from_columns(q, a, k, m, pid), completion_text(c)
            jobs.append((problem, Attempt(text, extract_answer(text))))

        async def score_all() -> list[float]:
            scores = await asyncio.gather(*(scorer.score(p, a, None) for p, a in jobs))
            return [s.value for s in scores]

        return asyncio.run(score_all())

    reward.__name__ = f"{scorer.name}_reward"  # TRL logs each reward under its function's name
    return reward


correctness_reward = scorer_reward(Check())
correctness_reward.__name__ = "correctness_reward"
correctness_reward.__doc__ = "1.0 for a completion whose final answer the task's verifier accepts."


def format_reward(prompts: list, completions: list, **_: Any) -> list[float]:
    """1.0 when the completion's last non-empty line is ``Answer: ...``, else 0.0."""
    return [1.0 if _ENDS_WITH_ANSWER.search(completion_text(c)) else 0.0 for c in completions]


steps_reward = scorer_reward(CountdownSteps())
steps_reward.__name__ = "steps_reward"
steps_reward.__doc__ = "1.0 for a countdown search whose every line and answer the step verifier accepts."


def reward_setup(
    format_weight: float = 0.0, scorer: Scorer | None = None, step_weight: float = 0.0
) -> tuple[list[RewardFunc], list[float]]:
    """The reward functions and their weights for ``GRPOConfig.reward_weights``: the ``scorer``'s
    reward (the task's ``check`` by default), plus the format reward and the countdown process
    reward (``steps_reward``) when they have a weight."""
    for name, weight in (("format", format_weight), ("step", step_weight)):
        if weight < 0:
            raise ValueError(f"{name} reward weight must be >= 0, got {weight}")
    funcs, weights = [correctness_reward if scorer is None else scorer_reward(scorer)], [1.0]
    for func, weight in ((format_reward, format_weight), (steps_reward, step_weight)):
        if weight:
            funcs.append(func)
            weights.append(float(weight))
    return funcs, weights


__all__ = [
    "completion_text",
    "scorer_reward",
    "correctness_reward",
    "format_reward",
    "steps_reward",
    "problem_columns",
    "problem_from_columns",
    "reward_setup",
]
