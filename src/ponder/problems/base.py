"""Problem: one question (or a whole conversation that ends in one) with its reference answer and
how to grade it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """``kind`` names the grader: "math" (symbolic equivalence), "numeric" (float tolerance),
    "exact" (string match), "choice" (a letter A-E), "countdown" (the expression is checked),
    "code" (the completion's code runs the tests in ``meta``: prompt, test, entry_point).
    ``meta`` holds set-specific fields (level, subject, the numbers of a countdown puzzle...).

    ``messages``: the conversation a chat client sent (``{"role", "content"}`` dicts: system, user,
    assistant and tool turns), whose last user message is ``question``; empty for a plain
    question. Strategies prompt with the whole conversation (``think.base.chat_messages``)."""

    id: str
    question: str
    answer: str | None = None
    kind: str = "math"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    messages: tuple[dict[str, str], ...] = field(default=(), hash=False, compare=False)

    def as_text(self) -> str:
        """The question, with the conversation before it when there is one, as plain text (for
        prompts that quote the problem: a judge's, a planner's)."""
        if len(self.messages) <= 1:
            return self.question
        return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in self.messages)

    @classmethod
    def conversation(cls, id: str, messages, **fields: Any) -> Problem:
        """A problem from a chat conversation: its question is the last user message's text."""
        msgs = tuple({"role": m["role"], "content": m["content"]} for m in messages)
        users = [m for m in msgs if m["role"] == "user"]
        if not users:
            raise ValueError("a conversation needs a user message (the question)")
        return cls(id, users[-1]["content"], messages=msgs, **fields)
