"""RL rewards built from ponder's verifiers, in TRL's reward-function signature.

A reward is ``reward(prompts, completions, **columns) -> list[float]``: TRL passes every dataset
column (here ``question``, ``answer``, ``kind``, ``meta`` as JSON, optionally ``problem_id``) as a
list with one entry per completion. ``correctness_reward`` rebuilds the Problem from those columns
and grades the completion with ``ponder.verify.verify`` — extract the final answer, then
``verify.check`` — the code that grades ``ponder bench``. One grader, three uses (STYLE.md 4).

``format_reward`` is 1.0 when the completion ends with an ``Answer: ...`` line (the lab format,
``format.completion_text``); its weight is applied by TRL (``GRPOConfig.reward_weights``).

Completions arrive as text (plain-text prompts) or as a list of chat messages (conversational
prompts); both are accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ponder import verify  # looked up at call time: grading is whatever verify.check is now
from ponder.problems.base import Problem

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


def correctness_reward(
    prompts: list,
    completions: list,
    question: list[str],
    answer: list[str | None],
    kind: list[str],
    meta: list[str],
    problem_id: list[str] | None = None,
    **_: Any,
) -> list[float]:
    """1.0 for a completion whose final answer the task's verifier accepts, else 0.0."""
    ids = problem_id or [f"rl-{i}" for i in range(len(completions))]
    rewards = []
    for c, q, a, k, m, pid in zip(completions, question, answer, kind, meta, ids, strict=True):
        verdict = verify.verify(problem_from_columns(q, a, k, m, pid), completion_text(c))
        rewards.append(1.0 if verdict.correct else 0.0)
    return rewards


def format_reward(prompts: list, completions: list, **_: Any) -> list[float]:
    """1.0 when the completion's last non-empty line is ``Answer: ...``, else 0.0."""
    return [1.0 if _ENDS_WITH_ANSWER.search(completion_text(c)) else 0.0 for c in completions]


def reward_setup(format_weight: float = 0.0) -> tuple[list[RewardFunc], list[float]]:
    """The reward functions and their weights for ``GRPOConfig.reward_weights``."""
    if format_weight < 0:
        raise ValueError(f"format reward weight must be >= 0, got {format_weight}")
    if format_weight == 0:
        return [correctness_reward], [1.0]
    return [correctness_reward, format_reward], [1.0, float(format_weight)]


__all__ = [
    "completion_text",
    "correctness_reward",
    "format_reward",
    "problem_columns",
    "problem_from_columns",
    "reward_setup",
]
