"""A chat conversation as the OpenAI API sends it, checked once for ``ponder serve`` and for
``ponder solve --messages FILE``: ``parse_conversation(messages) -> (question, turns)``.

Roles are system, developer, user, assistant and tool; content is a string or a list of text parts
(joined; images and audio are refused); the question is the last user message, and a conversation
must not end with an assistant turn (there would be nothing to answer).
"""

from __future__ import annotations

from typing import Any


class ConversationError(ValueError):
    """A malformed conversation; ``param`` names the field (``messages[2].content``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ConversationError(f"{param}[{j}]", f"only text content is supported, got {kind!r}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ConversationError(param, "message content must be a string or a list of text parts")


ROLES = ("system", "developer", "user", "assistant", "tool")


def parse_conversation(messages: Any) -> tuple[str, tuple[dict[str, str], ...]]:
    """(the question: the last user message's text, the conversation as role/content pairs)."""
    if not isinstance(messages, list) or not messages:
        raise ConversationError("messages", "messages must be a non-empty list")
    turns, last_user = [], None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ConversationError(f"messages[{i}]", "each message must be an object with a string role")
        if m["role"] not in ROLES:
            raise ConversationError(
                f"messages[{i}].role", f"unknown role {m['role']!r}; known: {', '.join(ROLES)}"
            )
        content = m.get("content")
        text = "" if content is None and m["role"] == "assistant" else _text(
            content, f"messages[{i}].content"
        )
        if m["role"] == "user":
            last_user = i
        turns.append({"role": m["role"], "content": text})
    if last_user is None:
        raise ConversationError("messages", "no user message: the last user message is the question")
    question = turns[last_user]["content"].strip()
    if not question:
        raise ConversationError(
            f"messages[{last_user}].content", "the question (last user message) is empty"
        )
    if turns[-1]["role"] == "assistant":
        raise ConversationError(
            f"messages[{len(turns) - 1}]",
            "the conversation ends with an assistant message: there is nothing to answer",
        )
    return question, tuple(turns)
