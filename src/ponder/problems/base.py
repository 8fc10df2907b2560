"""Problem: one question (or a whole conversation that ends in one) with its reference answer and
how to grade it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ponder.problems.conversation import Tools, calls_key


@dataclass(frozen=True)
class Problem:
    """``kind`` names the grader: "math" (symbolic equivalence), "numeric" (float tolerance),
    "exact" (string match), "choice" (a letter A-E), "countdown" (the expression is checked),
    "code" (the completion's code runs the tests in ``meta``: prompt, test, entry_point).
    ``meta`` holds set-specific fields (level, subject, the numbers of a countdown puzzle...).

    ``messages``: the conversation a chat client sent (``{"role", "content"}`` dicts: system, user,
    assistant and tool turns), whose last user message is ``question``; empty for a plain
    question. Strategies prompt with the whole conversation (``think.base.chat_messages``). An
    assistant turn may carry ``tool_calls`` (``ToolCall``s), a tool turn ``tool_call_id``.

    ``tools``: the functions the client offers the model (OpenAI function calling), or None; the
    strategies that answer with a sample (cot, vote, ...) may answer with its tool calls."""

    id: str
    question: str
    answer: str | None = None
    kind: str = "math"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    messages: tuple[dict[str, Any], ...] = field(default=(), hash=False, compare=False)
    tools: Tools | None = field(default=None, hash=False, compare=False)

    def as_text(self) -> str:
        """The question, with the conversation before it when there is one, as plain text (for
        prompts that quote the problem: a judge's, a planner's)."""
        if len(self.messages) <= 1:
            return self.question
        return "\n".join(_line(m) for m in self.messages)

    @classmethod
    def conversation(cls, id: str, messages, **fields: Any) -> Problem:
        """A problem from a chat conversation: its question is the last user message's text."""
        keep = ("role", "content", "tool_calls", "tool_call_id", "name")
        msgs = tuple({k: m[k] for k in keep if k in m} for m in messages)
        users = [m for m in msgs if m["role"] == "user"]
        if not users:
            raise ValueError("a conversation needs a user message (the question)")
        return cls(id, users[-1]["content"], messages=msgs, **fields)


def _line(m: dict[str, Any]) -> str:
    """One turn as a line of text; calls as their signatures (``get_weather({"city": "Paris"})``)."""
    text = m["content"]
    if m.get("tool_calls"):
        text = (text + " " if text else "") + f"[calls {calls_key(m['tool_calls'])}]"
    return f"{m['role'].capitalize()}: {text}"
